package buildkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// helloLayer is the COPY layer: a USTAR tar of hello.txt (0644, root, mtime
// truncated to the second) compressed with gzip at the default level and no
// name or time in its header. For the fixtures' content and time these are
// the very bytes BuildKit pushed.
func helloLayer(content []byte, mtime time.Time) (gz, tarball []byte, err error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     "hello.txt",
		Mode:     0o644,
		Size:     int64(len(content)),
		ModTime:  mtime.Truncate(time.Second),
		Format:   tar.FormatUSTAR,
	}); err != nil {
		return nil, nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	var gb bytes.Buffer
	zw := gzip.NewWriter(&gb)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return gb.Bytes(), tb.Bytes(), nil
}

// imageConfig is BuildKit's image config. The exporter re-encodes the
// frontend's config through a map to patch rootfs, history and created, so
// top-level keys come out sorted: the fields are declared in that order.
type imageConfig struct {
	Architecture string     `json:"architecture"`
	Config       execConfig `json:"config"`
	Created      time.Time  `json:"created"`
	History      []history  `json:"history"`
	OS           string     `json:"os"`
	OSFeatures   []string   `json:"os.features,omitempty"`
	OSVersion    string     `json:"os.version,omitempty"`
	RootFS       rootFS     `json:"rootfs"`
	Variant      string     `json:"variant,omitempty"`
}

// execConfig keeps the Dockerfile frontend's field order.
type execConfig struct {
	Env        []string          `json:"Env"`
	WorkingDir string            `json:"WorkingDir"`
	Labels     map[string]string `json:"Labels"`
}

type history struct {
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by"`
	Comment    string    `json:"comment"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// helloFile is the build-context file the COPY takes, named after the
// target platform as in the Dockerfile.
func helloFile(p v1.Platform) string {
	return "hello-" + p.Architecture + p.Variant + ".txt"
}

// labelLine is the Dockerfile's LABEL instruction with COMPONENT expanded.
func labelLine(o Options) string {
	return "LABEL org.opencontainers.image.source=" + o.Source + " org.opencontainers.image.title=" + o.Component
}

func imageConfigJSON(o Options, diffID v1.Hash) ([]byte, error) {
	p, t := o.Platform, o.Created
	step := func(by string, empty bool) history {
		return history{Created: t, CreatedBy: by, Comment: "buildkit.dockerfile.v0", EmptyLayer: empty}
	}
	cfg := imageConfig{
		Architecture: p.Architecture,
		Config: execConfig{
			Env:        []string{defaultPath},
			WorkingDir: "/",
			Labels: map[string]string{
				"org.opencontainers.image.source": o.Source,
				"org.opencontainers.image.title":  o.Component,
			},
		},
		Created: t,
		History: []history{
			step("ARG TARGETARCH="+p.Architecture, true),
			step("ARG TARGETVARIANT="+p.Variant, true),
			step("ARG COMPONENT="+o.Component, true),
			step("COPY "+helloFile(p)+" /hello.txt # buildkit", false),
			step(labelLine(o), true),
		},
		OS:         p.OS,
		OSFeatures: p.OSFeatures,
		OSVersion:  p.OSVersion,
		RootFS:     rootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		Variant:    p.Variant,
	}
	return json.Marshal(cfg)
}
