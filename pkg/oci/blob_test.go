package oci_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
)

func TestBlobs(t *testing.T) {
	for _, reg := range testenv.Registries(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ctx := testCtx(t)
			p := testenv.NewFaultProxy(t, "http://"+reg.Host)
			c := plainClient(t)
			repo := repoOf(t, c, p.Host()+"/blobs")
			data := bytes.Repeat([]byte("seal blob "), 10000)
			d := blobDesc("application/octet-stream", data)

			if ok, err := c.HasBlob(ctx, repo, d.Digest); err != nil || ok {
				t.Fatalf("HasBlob before push: %v %v", ok, err)
			}
			_, err := c.BlobBytes(ctx, repo, d, 1<<20)
			mustKind(t, err, fault.Input)
			if !strings.Contains(err.Error(), d.Digest.String()) {
				t.Fatalf("error %q does not name the digest", err)
			}

			if err := c.PushBlob(ctx, repo, d, data); err != nil {
				t.Fatal(err)
			}
			if err := c.PushBlob(ctx, repo, d, data); err != nil {
				t.Fatal(err)
			}
			if n := p.Count("PUT", "upload"); n != 1 {
				t.Fatalf("%d uploads for two pushes of one blob, want 1 (the second skipped)", n)
			}
			if ok, err := c.HasBlob(ctx, repo, d.Digest); err != nil || !ok {
				t.Fatalf("HasBlob after push: %v %v", ok, err)
			}
			got, err := c.BlobBytes(ctx, repo, d, 1<<20)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("BlobBytes: %d bytes, %v", len(got), err)
			}
			rc, err := c.Blob(ctx, repo, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err = io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Blob: %d bytes, %v", len(got), err)
			}
			_, err = c.BlobBytes(ctx, repo, d, 100)
			mustKind(t, err, fault.Input)

			// Data that does not match its descriptor is never pushed.
			err = c.PushBlob(ctx, repo, blobDesc("application/octet-stream", []byte("other")), data)
			mustKind(t, err, fault.Input)
		})
	}
}

func TestBlobDigestMismatch(t *testing.T) {
	ctx := testCtx(t)
	data := []byte("the real content")
	liarData := []byte("fake content!!!!") // same length
	d := blobDesc("application/octet-stream", data)
	host := liar(t, quietGGCR(), func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/blobs/"+d.Digest.String()) && r.Method == http.MethodGet:
			w.Header().Set("Content-Length", fmt.Sprint(len(liarData)))
			w.Write(liarData)
		case strings.HasSuffix(r.URL.Path, "/blobs/sha256:"+strings.Repeat("a", 64)):
			// Longer than announced by the descriptor.
			w.Write(append(data, data...))
		default:
			return false
		}
		return true
	})
	c := plainClient(t)
	repo := repoOf(t, c, host+"/lies")
	_, err := c.BlobBytes(ctx, repo, d, 1<<20)
	mustKind(t, err, fault.Input)
	if !strings.Contains(err.Error(), d.Digest.String()) {
		t.Fatalf("error %q does not name the digest", err)
	}
	rc, err := c.Blob(ctx, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	mustKind(t, err, fault.Input)
	if bytes.Equal(got, liarData) {
		t.Fatal("the wrong content was handed out whole")
	}

	long := v1.Descriptor{Size: int64(len(data)), Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}
	_, err = c.BlobBytes(ctx, repo, long, 1<<20)
	mustKind(t, err, fault.Input)
}

func TestCopyBlob(t *testing.T) {
	ctx := testCtx(t)
	dist := testenv.Distribution(t)
	other := testenv.GGCR(t)
	src := testenv.NewFaultProxy(t, "http://"+dist.Host)
	dst := testenv.NewFaultProxy(t, "http://"+other.Host)
	c := plainClient(t)

	data := bytes.Repeat([]byte("layer "), 50000)
	d := blobDesc("application/vnd.oci.image.layer.v1.tar", data)
	a := repoOf(t, c, src.Host()+"/a")
	if err := c.PushBlob(ctx, a, d, data); err != nil {
		t.Fatal(err)
	}

	t.Run("mount", func(t *testing.T) {
		src.ResetCounts()
		b := repoOf(t, c, src.Host()+"/b")
		if err := c.CopyBlob(ctx, a, b, d); err != nil {
			t.Fatal(err)
		}
		counts := src.Counts()
		if counts["POST mount"] != 1 || counts["PUT upload"]+counts["PATCH upload"]+counts["POST upload"] != 0 || counts["GET blob"] != 0 {
			t.Fatalf("counts %v: want one mount, no upload, no download", counts)
		}
		if ok, err := c.HasBlob(ctx, b, d.Digest); err != nil || !ok {
			t.Fatalf("mounted blob missing: %v %v", ok, err)
		}
		// Present now: skipped with one HEAD.
		src.ResetCounts()
		if err := c.CopyBlob(ctx, a, b, d); err != nil {
			t.Fatal(err)
		}
		if counts := src.Counts(); counts["POST mount"] != 0 || counts["HEAD blob"] != 1 {
			t.Fatalf("counts %v: want only a HEAD for a present blob", counts)
		}
	})

	t.Run("stream across registries", func(t *testing.T) {
		src.ResetCounts()
		dst.ResetCounts()
		x := repoOf(t, c, dst.Host()+"/x")
		if err := c.CopyBlob(ctx, a, x, d); err != nil {
			t.Fatal(err)
		}
		if n := src.Count("GET", "blob"); n != 1 {
			t.Fatalf("%d downloads from the source, want 1", n)
		}
		if n := dst.Count("PUT", "upload"); n != 1 || dst.Count("POST", "mount") != 0 {
			t.Fatalf("destination counts %v: want one upload, no mount", dst.Counts())
		}
		got, err := c.BlobBytes(ctx, x, d, 1<<20)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copied blob: %d bytes, %v", len(got), err)
		}
	})

	t.Run("mount declined", func(t *testing.T) {
		// A front that drops the mount parameters, as a registry that does
		// not mount: it answers 202 with an upload session.
		u, _ := url.Parse("http://" + dist.Host)
		rp := httputil.NewSingleHostReverseProxy(u)
		host := liar(t, rp, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				r.URL.RawQuery = ""
			}
			return false
		})
		front := testenv.NewFaultProxy(t, "http://"+host)
		fa := repoOf(t, c, front.Host()+"/a")
		fc := repoOf(t, c, front.Host()+"/c")
		if err := c.CopyBlob(ctx, fa, fc, d); err != nil {
			t.Fatal(err)
		}
		counts := front.Counts()
		if counts["POST mount"] != 1 || counts["GET blob"] != 1 || counts["PUT upload"] != 1 {
			t.Fatalf("counts %v: want a mount asked, then a streamed copy", counts)
		}
		got, err := c.BlobBytes(ctx, fc, d, 1<<20)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copied blob: %d bytes, %v", len(got), err)
		}
	})

	t.Run("missing source", func(t *testing.T) {
		missing := blobDesc("application/octet-stream", []byte("never pushed"))
		err := c.CopyBlob(ctx, a, repoOf(t, c, dst.Host()+"/y"), missing)
		mustKind(t, err, fault.Input)
	})
}
