package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	// Files by path without the leading slash (etc/passwd), directories with a trailing one.
	Files map[string]Entry
}

// Read loads the image ref from the tarball file and flattens its layers.
func Read(file, ref string) (*Contents, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return nil, err
	}
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", ref, file, err)
	}
	c := &Contents{Ref: ref, Files: map[string]Entry{}}
	if c.Digest, err = img.Digest(); err != nil {
		return nil, err
	}
	if c.Config, err = img.ConfigFile(); err != nil {
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
		c.Files[strings.TrimPrefix(h.Name, "/")] = e
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
