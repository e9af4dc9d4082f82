// Package ociimage builds container images of this project's static binaries without a
// container daemon and without pulling a base image: every layer is written here, from
// scratch, with github.com/google/go-containerregistry, and the image is saved as a tarball
// that `docker load`, `podman load`, `kind load image-archive`, `ctr images import` and
// `crane push` take.
//
// An image holds two layers: a minimal root (an /etc/passwd and /etc/group with the non-root
// user the image runs as, the CA certificates for TLS to PostgreSQL, InfluxDB or a remote
// kube-apiserver, a world-writable /tmp and the user's home) and the binary in
// /usr/local/bin, its entrypoint.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// UID and GID of the user every image runs as, the "nonroot" of distroless images:
	// the charts' pod security contexts name the same numbers.
	UID = 65532
	GID = 65532
	// UserName is its /etc/passwd name.
	UserName = "nonroot"
	// BinDir holds the binary.
	BinDir = "/usr/local/bin"
	// CACertificatesPath is where the CA bundle goes, where Go's crypto/x509 looks first on Linux.
	CACertificatesPath = "/etc/ssl/certs/ca-certificates.crt"
	// DefaultCACertificates is the build machine's bundle (Debian's ca-certificates).
	DefaultCACertificates = "/etc/ssl/certs/ca-certificates.crt"
)

// Spec describes one image.
type Spec struct {
	// Name is the binary's name in BinDir, e.g. cloud-api.
	Name string
	// Binary is the path of the static executable to put there.
	Binary string
	// CACertificates is a PEM bundle path; empty means DefaultCACertificates.
	CACertificates string
	// Architecture is the GOARCH the binary was built for; empty means amd64.
	Architecture string
	// Created stamps the image and every file in it, so that the same inputs give the same
	// digest. Zero means the Unix epoch.
	Created time.Time
	// Labels are added to the image config, e.g. org.opencontainers.image.version.
	Labels map[string]string
}

// Build assembles the image of spec. It refuses a binary that is not a static ELF
// executable: with no libc in the image, a dynamic one could not start.
func Build(spec Spec) (v1.Image, error) {
	if spec.Name == "" || path.Base(spec.Name) != spec.Name {
		return nil, fmt.Errorf("image name %q: want a plain file name", spec.Name)
	}
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, err
	}
	if err := CheckStatic(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (build it with CGO_ENABLED=0)", spec.Binary, err)
	}
	caPath := spec.CACertificates
	if caPath == "" {
		caPath = DefaultCACertificates
	}
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w (install ca-certificates, or name another bundle)", err)
	}
	if n := countCertificates(ca); n == 0 {
		return nil, fmt.Errorf("CA certificates %s: no certificate in it", caPath)
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()

	root, err := layer(created, rootFiles(ca))
	if err != nil {
		return nil, err
	}
	binLayer, err := layer(created, []file{
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: "usr/local/bin/" + spec.Name, mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: root, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "ociimage: root filesystem", Comment: "passwd, group, CA certificates, /tmp"}},
		mutate.Addendum{Layer: binLayer, MediaType: types.OCILayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "ociimage: " + BinDir + "/" + spec.Name}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = spec.Architecture
	if cf.Architecture == "" {
		cf.Architecture = "amd64"
	}
	cf.Created = v1.Time{Time: created}
	cf.Config.User = fmt.Sprintf("%d:%d", UID, GID)
	cf.Config.Entrypoint = []string{BinDir + "/" + spec.Name}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{
		"PATH=" + BinDir + ":/usr/bin:/bin",
		"SSL_CERT_FILE=" + CACertificatesPath,
		"HOME=/home/" + UserName,
	}
	cf.Config.Labels = map[string]string{}
	for k, v := range spec.Labels {
		cf.Config.Labels[k] = v
	}
	return mutate.ConfigFile(img, cf)
}

// WriteTarball saves img under the reference ref (e.g. ghcr.io/calyptia/cloud-api:0.1.0) as
// one tar file that is both an OCI image layout (oci-layout, index.json, blobs/sha256/...:
// podman load, skopeo and containerd's ctr import read it as an oci-archive) and a `docker
// save` archive (manifest.json naming the same blobs, as Docker 25 writes it: docker load and
// kind load image-archive read that). The image keeps its own manifest, hence its digest.
func WriteTarball(img v1.Image, ref, file string) error {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := writeArchive(f, img, tag); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func writeArchive(w io.Writer, img v1.Image, tag name.Tag) error {
	tw := tar.NewWriter(w)
	seen := map[string]bool{}
	add := func(name string, b []byte) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		// Fixed metadata: the archive of the same image is the same file.
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add(blob(configName), config); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := add(blob(d), b); err != nil {
			return err
		}
		layerPaths = append(layerPaths, blob(d))
	}
	if err := add(blob(digest), manifest); err != nil {
		return err
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mediaType,
			Digest:    digest,
			Size:      int64(len(manifest)),
			Annotations: map[string]string{
				// As docker save writes them: containerd takes the full name, the OCI
				// layout convention the tag.
				"io.containerd.image.name":          tag.Name(),
				"org.opencontainers.image.ref.name": tag.TagStr(),
			},
		}},
	})
	if err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	docker, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: blob(configName), RepoTags: []string{tag.Name()}, Layers: layerPaths}})
	if err != nil {
		return err
	}
	if err := add("manifest.json", docker); err != nil {
		return err
	}
	return tw.Close()
}

// CheckStatic reports an error unless b is an ELF executable that needs no dynamic loader
// and no shared library.
func CheckStatic(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("ELF type %s is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (it names a program interpreter)")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return fmt.Errorf("dynamically linked against %v", libs)
	}
	return nil
}

func countCertificates(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err == nil {
				n++
			}
		}
	}
}

type file struct {
	name     string
	mode     int64
	dir      bool
	data     []byte
	uid, gid int
}

func rootFiles(ca []byte) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", UserName, UID, GID, UserName, UserName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
	return []file{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/" + UserName + "/", mode: 0o700, dir: true, uid: UID, gid: GID},
		{name: "root/", mode: 0o700, dir: true},
		// Sticky and world-writable, as on any Linux: charts mount an emptyDir here anyway.
		{name: "tmp/", mode: 0o1777, dir: true},
	}
}

func layer(modTime time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: modTime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
