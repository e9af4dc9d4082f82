package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one file of an image's flattened filesystem.
type Entry struct {
	Header *tar.Header
	// Data is the content of regular files.
	Data []byte
}

// Contents is an image read back from a tarball.
type Contents struct {
	Ref    string
	Digest v1.Hash
	Config *v1.ConfigFile
	// Files by path without the leading or a trailing slash (etc/passwd, tmp).
	Files map[string]Entry
}

// Read loads the image ref from the archive file both ways it can be read: as an OCI image
// layout (the image, its digest and config) and as a docker archive (which must name the same
// config and layers), and flattens its layers.
func Read(file, ref string) (*Contents, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ociimage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := untar(file, dir); err != nil {
		return nil, err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is no OCI image layout: %w", file, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var img v1.Image
	for _, d := range im.Manifests {
		if d.Annotations["io.containerd.image.name"] == tag.Name() && d.Annotations["org.opencontainers.image.ref.name"] == tag.TagStr() {
			if img, err = idx.Image(d.Digest); err != nil {
				return nil, err
			}
		}
	}
	if img == nil {
		return nil, fmt.Errorf("%s: no image %s in index.json", file, ref)
	}
	c := &Contents{Ref: ref, Files: map[string]Entry{}}
	if c.Digest, err = img.Digest(); err != nil {
		return nil, err
	}
	if c.Config, err = img.ConfigFile(); err != nil {
		return nil, err
	}
	if err := sameAsDocker(img, file, tag); err != nil {
		return nil, err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		e := Entry{Header: h}
		if h.Typeflag == tar.TypeReg {
			if e.Data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
		c.Files[strings.Trim(h.Name, "/")] = e
	}
	return c, nil
}

// Check verifies what every image of this project must be: an entrypoint that is a static
// executable in the image, a non-root numeric user listed in /etc/passwd, and CA certificates.
func (c *Contents) Check() error {
	var errs []error
	cfg := c.Config.Config
	if len(cfg.Entrypoint) != 1 {
		errs = append(errs, fmt.Errorf("entrypoint %q: want one path", cfg.Entrypoint))
	} else {
		e, ok := c.Files[strings.TrimPrefix(cfg.Entrypoint[0], "/")]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("entrypoint %s is not in the image", cfg.Entrypoint[0]))
		case e.Header.Typeflag != tar.TypeReg || e.Header.Mode&0o111 == 0:
			errs = append(errs, fmt.Errorf("entrypoint %s is not an executable file (mode %o)", cfg.Entrypoint[0], e.Header.Mode))
		default:
			if err := CheckStatic(e.Data); err != nil {
				errs = append(errs, fmt.Errorf("entrypoint %s: %w", cfg.Entrypoint[0], err))
			}
		}
	}
	uid, _, ok := strings.Cut(cfg.User, ":")
	n, err := strconv.Atoi(uid)
	switch {
	case !ok || err != nil:
		// A numeric uid:gid lets the kubelet enforce runAsNonRoot without reading /etc/passwd.
		errs = append(errs, fmt.Errorf("user %q: want numeric uid:gid", cfg.User))
	case n == 0:
		errs = append(errs, errors.New("the image runs as root"))
	default:
		passwd := string(c.Files["etc/passwd"].Data)
		found := false
		for _, line := range strings.Split(passwd, "\n") {
			if f := strings.Split(line, ":"); len(f) == 7 && f[2] == uid {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("uid %s has no /etc/passwd entry", uid))
		}
	}
	if n := countCertificates(c.Files[strings.TrimPrefix(CACertificatesPath, "/")].Data); n == 0 {
		errs = append(errs, fmt.Errorf("no CA certificate in %s", CACertificatesPath))
	}
	return errors.Join(errs...)
}

// sameAsDocker checks that the docker view of the archive (manifest.json, as docker load
// reads it) is the image of the OCI view: same config, same layers.
func sameAsDocker(img v1.Image, file string, tag name.Tag) error {
	d, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		return fmt.Errorf("reading %s as docker load would: %w", file, err)
	}
	want, err := img.ConfigName()
	if err != nil {
		return err
	}
	got, err := d.ConfigName()
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("manifest.json names config %s, index.json %s", got, want)
	}
	wl, err := img.Layers()
	if err != nil {
		return err
	}
	gl, err := d.Layers()
	if err != nil {
		return err
	}
	if len(wl) != len(gl) {
		return fmt.Errorf("manifest.json has %d layers, index.json %d", len(gl), len(wl))
	}
	for i := range wl {
		a, err := wl[i].DiffID()
		if err != nil {
			return err
		}
		b, err := gl[i].DiffID()
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("layer %d differs between manifest.json and index.json", i)
		}
	}
	return nil
}

func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(h.Name) {
			return fmt.Errorf("%s: unexpected entry %q", file, h.Name)
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		out, err := os.Create(p)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
}
