package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	storagemiddleware "github.com/distribution/distribution/v3/registry/storage/driver/middleware"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Distribution serves every blob through a reader that allocates a 4 MiB
// buffer per request (storage.fileReaderBufferSize), whatever the blob's
// size. Signatures, attestations and configs are blobs of a few KiB, and a
// verification of a release reads hundreds of them: the buffers, and the
// garbage collections they cause, were most of the registry's CPU time (97 %
// of its allocations in a profile of `seal verify` over 100 images). So GET
// and HEAD of a small blob are answered here, from the same storage through
// Distribution's own storage API, after the same access check, with the
// headers Distribution sends; anything else, and every case that is not a
// plain success, goes to Distribution. (Distribution would also emit a
// "blob pulled" notification; this registry configures no notification
// endpoints, so there is no one to tell.)
const smallBlobLimit = 1 << 20

// blobCacheMaxAge is Distribution's Cache-Control for blobs (content
// addressed, so immutable).
const blobCacheMaxAge = 365 * 24 * time.Hour

// captureMiddleware is the storage middleware through which the driver
// Distribution builds from its configuration is handed to fastReads, so
// both read the same storage (for in-memory storage there is no other way
// to reach it).
const captureMiddleware = "seal-capture-driver"

var captured sync.Map // capture id → storagedriver.StorageDriver

func init() {
	err := storagemiddleware.Register(captureMiddleware, func(_ context.Context, d storagedriver.StorageDriver, opts map[string]any) (storagedriver.StorageDriver, error) {
		id, _ := opts["id"].(string)
		if id == "" {
			return nil, fmt.Errorf("%s: no id", captureMiddleware)
		}
		captured.Store(id, d)
		return d, nil
	})
	if err != nil {
		panic(err)
	}
}

// newCaptureID returns an id for captureMiddleware's options.
func newCaptureID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// takeCaptured returns the driver captured under id, once.
func takeCaptured(id string) (storagedriver.StorageDriver, bool) {
	d, ok := captured.LoadAndDelete(id)
	if !ok {
		return nil, false
	}
	return d.(storagedriver.StorageDriver), true
}

// fastReads answers the reads a verification makes most (GET and HEAD of
// small blobs and of manifests) when they succeed plainly; next
// (Distribution) answers everything else.
type fastReads struct {
	next   http.Handler
	ns     distribution.Namespace
	access auth.AccessController // nil: no authentication configured
}

func newFastReads(ctx context.Context, next http.Handler, d storagedriver.StorageDriver, access auth.AccessController) (*fastReads, error) {
	ns, err := storage.NewRegistry(ctx, d)
	if err != nil {
		return nil, err
	}
	return &fastReads{next: next, ns: ns, access: access}, nil
}

func (s *fastReads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reads := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !reads || (!s.serveBlob(w, r) && !s.serveManifest(w, r)) {
		s.next.ServeHTTP(w, r)
	}
}

// repository is repo in the storage, when r may pull from it. A refusal is
// Distribution's to answer (401 with its challenge).
func (s *fastReads) repository(r *http.Request, repo reference.Named) (distribution.Repository, bool) {
	if s.access != nil {
		if _, err := s.access.Authorized(r, auth.Access{
			Resource: auth.Resource{Type: "repository", Name: repo.Name()},
			Action:   "pull",
		}); err != nil {
			return nil, false
		}
	}
	rp, err := s.ns.Repository(r.Context(), repo)
	return rp, err == nil
}

// serveBlob answers r, a GET or HEAD, if it is a plain success for a small
// blob, and reports whether it did; it writes nothing otherwise.
func (s *fastReads) serveBlob(w http.ResponseWriter, r *http.Request) bool {
	repo, dgst, ok := blobPath(r.URL.Path)
	if !ok {
		return false
	}
	rp, ok := s.repository(r, repo)
	if !ok {
		return false
	}
	ctx := r.Context()
	blobs := rp.Blobs(ctx)
	// Stat checks the blob is linked in this repository, as Distribution's
	// handler does; an unknown blob gets Distribution's 404.
	desc, err := blobs.Stat(ctx, dgst)
	if err != nil || desc.Size > smallBlobLimit {
		return false
	}
	data, err := blobs.Get(ctx, desc.Digest)
	if err != nil || int64(len(data)) != desc.Size {
		return false
	}
	h := w.Header()
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("ETag", fmt.Sprintf(`"%s"`, desc.Digest))
	h.Set("Cache-Control", fmt.Sprintf("max-age=%.f", blobCacheMaxAge.Seconds()))
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("Content-Type", desc.MediaType)
	h.Set("Content-Length", fmt.Sprint(desc.Size))
	// Ranges, If-None-Match and HEAD as Distribution (http.ServeContent).
	http.ServeContent(w, r, desc.Digest.String(), time.Time{}, bytes.NewReader(data))
	return true
}

// blobPath parses /v2/<name>/blobs/<digest>. Upload paths
// (/blobs/uploads/…) and anything malformed do not parse, and are left to
// Distribution.
func blobPath(p string) (reference.Named, digest.Digest, bool) {
	repo, id, ok := splitPath(p, "blobs")
	if !ok {
		return nil, "", false
	}
	dgst, err := digest.Parse(id)
	if err != nil {
		return nil, "", false
	}
	return repo, dgst, true
}

// splitPath splits /v2/<name>/<kind>/<id> into a valid repository name and
// id; kind is the last path element of its name (names may contain it).
func splitPath(p, kind string) (reference.Named, string, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return nil, "", false
	}
	sep := "/" + kind + "/"
	i := strings.LastIndex(rest, sep)
	if i <= 0 {
		return nil, "", false
	}
	repo, err := reference.WithName(rest[:i])
	if err != nil {
		return nil, "", false
	}
	return repo, rest[i+len(sep):], true
}
