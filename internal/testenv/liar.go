package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The sizes of the liar's lies.
const (
	LiarManifestSize   = 100 << 20 // HugeManifest: 100 MiB
	LiarIndexEntries   = 100_000   // WideIndex
	LiarReferrers      = 10_000    // Referrers
	LiarReferrersPage  = 100       // Referrers(ReferrersPaged): entries per page
	LiarChainDepth     = 64        // DeepChain: indexes above the image
	LiarFanOut         = 200       // FanOut: entries per index
	LiarFanOutDepth    = 3         // FanOut: indexes above the image
	LiarEndlessClaimed = 1 << 20   // EndlessBlob: the size the layer descriptor claims
)

// Liar is a registry on 127.0.0.1 that lies: it speaks enough of the
// distribution API (ping, manifests and blobs by tag or digest, referrers;
// GET and HEAD) for seal's client to talk to it, and each repository serves
// one lie. The large lies (the 100 MiB manifest, the 100 000-entry index,
// the 10 000 referrers in one answer, the endless blob) are generated as they
// are sent, never held, so a test can measure what the client allocates.
type Liar struct {
	Host string // 127.0.0.1:PORT
	URL  string // http://127.0.0.1:PORT

	srv    *httptest.Server
	served atomic.Int64 // body bytes written

	mu       sync.Mutex
	routes   map[string]*resource // repo + " " + kind + " " + id
	noAPI    map[string]bool      // repositories without the referrers API
	paged    map[string]pagedList // repo → paginated referrers
	lies     map[string]Lie       // by name, each built once
	requests map[string]int       // "GET manifests" → count
}

// Lie is where one lie starts and what it claims.
type Lie struct {
	// Ref is HOST/REPO:TAG; its manifest is what Descriptor describes
	// (a HEAD answers Descriptor), whatever a GET then serves.
	Ref        string
	Descriptor v1.Descriptor
	// Blob, for blob lies, is the descriptor (from an honest manifest) of
	// the blob whose bytes are a lie.
	Blob v1.Descriptor
}

// Repo is HOST/REPO of the lie.
func (l Lie) Repo() string { return l.Ref[:strings.LastIndex(l.Ref, ":")] }

// ByDigest is HOST/REPO@DIGEST of the lie's manifest.
func (l Lie) ByDigest() string { return l.Repo() + "@" + l.Descriptor.Digest.String() }

// resource is what one URL answers.
type resource struct {
	contentType string
	size        int64  // the size HEAD announces; -1 when unknown
	chunked     bool   // GET sends no Content-Length
	digest      string // Docker-Content-Digest, if any
	body        func(ctx context.Context, w io.Writer) error
}

type pagedList struct {
	subject v1.Hash
	pages   [][]byte
}

// NewLiar starts a lying registry, stopped when t ends.
func NewLiar(t testing.TB) *Liar {
	l := &Liar{
		routes:   map[string]*resource{},
		noAPI:    map[string]bool{},
		paged:    map[string]pagedList{},
		lies:     map[string]Lie{},
		requests: map[string]int{},
	}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	l.URL = l.srv.URL
	l.Host = strings.TrimPrefix(l.srv.URL, "http://")
	t.Cleanup(func() {
		// Endless bodies end when their connection does.
		l.srv.CloseClientConnections()
		l.srv.Close()
	})
	return l
}

// Requests counts the requests received by method and kind
// ("GET manifests", "HEAD blobs", "GET referrers", …).
func (l *Liar) Requests(methodKind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests[methodKind]
}

// Served is how many body bytes the liar has written so far.
func (l *Liar) Served() int64 { return l.served.Load() }

// OtherManifest: GET REPO@D (and REPO:latest) serves other bytes than the
// manifest D, of the same length, announcing D in Docker-Content-Digest.
func (l *Liar) OtherManifest() Lie {
	return l.once("other-manifest", func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		honest := imageManifest(cfg, nil, `"honest"`)
		forged := imageManifest(cfg, nil, `"forged"`)
		d := manifestDesc(honest)
		return l.manifestLie(repo, d, fixed(forged, d.MediaType))
	})
}

// OtherBlob: an honest image manifest whose config blob is served with other
// bytes of the same length (Lie.Blob is the config's descriptor).
func (l *Liar) OtherBlob() Lie {
	return l.once("other-blob", func(repo string) Lie {
		honest := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		forged := []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cfg := blobDescriptor(types.OCIConfigJSON, honest)
		l.route(repo, "blobs", cfg.Digest.String(), fixed(forged, "application/octet-stream"))
		layer := l.honestBlob(repo, types.OCILayer, []byte("layer"))
		m := imageManifest(cfg, []v1.Descriptor{layer}, `""`)
		d := l.honestManifest(repo, "latest", m)
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d, Blob: cfg}
	})
}

// HugeManifest: a 100 MiB image manifest (an annotation padded out),
// honest about its digest, which HEAD announces with its size. chunked GETs
// send no Content-Length, so only reading tells its size.
func (l *Liar) HugeManifest(chunked bool) Lie {
	name := "huge-manifest"
	if chunked {
		name += "-chunked"
	}
	return l.once(name, func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte("{}"))
		head, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{}})
		head = append(head[:len(head)-1], []byte(`,"annotations":{"pad":"`)...)
		tail := []byte(`"}}`)
		pad := int64(LiarManifestSize - len(head) - len(tail))
		return l.generated(repo, types.OCIManifestSchema1, chunked, func(ctx context.Context, w io.Writer) error {
			if _, err := w.Write(head); err != nil {
				return err
			}
			if err := repeatByte(ctx, w, 'a', pad); err != nil {
				return err
			}
			_, err := w.Write(tail)
			return err
		})
	})
}

// WideIndex: an honest OCI index of 100 000 image manifests (each a distinct
// digest and platform variant, none of which exists), about 22 MB, sent
// without a Content-Length.
func (l *Liar) WideIndex() Lie {
	return l.once("wide-index", func(repo string) Lie {
		return l.generated(repo, types.OCIImageIndex, true, func(ctx context.Context, w io.Writer) error {
			return writeIndex(ctx, w, LiarIndexEntries, func(i int) string {
				return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064x","size":1234,"platform":{"architecture":"amd64","os":"linux","variant":"v%d"}}`, i, i)
			})
		})
	})
}

// Cycle: index A lists index B, which lists A again. Content addressing
// makes an honest cycle impossible (A's digest would depend on itself), so B
// lists A under a digest X for which the liar serves A's bytes.
func (l *Liar) Cycle() Lie {
	return l.once("cycle", func(repo string) Lie {
		x := v1.Hash{Algorithm: "sha256", Hex: hashHex([]byte("where A should be"))}
		// B gives A's size, which depends on B's: a fixed point, reached
		// once the number of digits stops changing.
		var a, b []byte
		for size := int64(0); ; {
			b = indexOf(v1.Descriptor{MediaType: types.OCIImageIndex, Size: size, Digest: x})
			a = indexOf(manifestDesc(b))
			if int64(len(a)) == size {
				break
			}
			size = int64(len(a))
		}
		l.honestManifest(repo, "", b)
		d := l.honestManifest(repo, "latest", a)
		r := fixed(a, types.OCIImageIndex)
		r.digest = x.String()
		l.route(repo, "manifests", x.String(), r)
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d}
	})
}

// DeepChain: 64 honest indexes, each listing the next, above an image.
func (l *Liar) DeepChain() Lie {
	return l.once("deep-chain", func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		d := l.honestManifest(repo, "", imageManifest(cfg, nil, `""`))
		d.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
		for i := 0; i < LiarChainDepth; i++ {
			tag := ""
			if i == LiarChainDepth-1 {
				tag = "latest"
			}
			d = l.honestManifest(repo, tag, indexOf(d))
		}
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d}
	})
}

// FanOut: three levels of honest indexes, each listing the one below it
// 200 times, above one image: 8 million paths to the image for a walker
// that does not notice it has been somewhere before.
func (l *Liar) FanOut() Lie {
	return l.once("fan-out", func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		d := l.honestManifest(repo, "", imageManifest(cfg, nil, `""`))
		d.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
		for i := 0; i < LiarFanOutDepth; i++ {
			entry, _ := json.Marshal(d)
			var b strings.Builder
			_ = writeIndex(context.Background(), &b, LiarFanOut, func(int) string { return string(entry) })
			tag := ""
			if i == LiarFanOutDepth-1 {
				tag = "latest"
			}
			d = l.honestManifest(repo, tag, []byte(b.String()))
		}
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d}
	})
}

// ReferrersMode is how Referrers serves its list.
type ReferrersMode int

const (
	ReferrersAPI   ReferrersMode = iota // one OCI 1.1 referrers answer (about 2.7 MB)
	ReferrersPaged                      // the API, 100 per page, Link rel="next"
	ReferrersTag                        // no API; the sha256-<hex> fallback tag index
)

// Referrers: an honest image (Lie.Descriptor is the subject) with 10 000
// Sigstore bundle referrers listed, none of which exists.
func (l *Liar) Referrers(mode ReferrersMode) Lie {
	name := [...]string{"referrers-api", "referrers-paged", "referrers-tag"}[mode]
	return l.once(name, func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		subject := l.honestManifest(repo, "latest", imageManifest(cfg, nil, `""`))
		entry := func(i int) string {
			return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064x","size":1000,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}`, i)
		}
		switch mode {
		case ReferrersAPI:
			l.generatedAt(repo, "referrers", subject.Digest.String(), types.OCIImageIndex, false, func(ctx context.Context, w io.Writer) error {
				return writeIndex(ctx, w, LiarReferrers, entry)
			})
		case ReferrersPaged:
			var p pagedList
			p.subject = subject.Digest
			for start := 0; start < LiarReferrers; start += LiarReferrersPage {
				var b strings.Builder
				_ = writeIndex(context.Background(), &b, LiarReferrersPage, func(i int) string { return entry(start + i) })
				p.pages = append(p.pages, []byte(b.String()))
			}
			l.mu.Lock()
			l.paged[repo] = p
			l.mu.Unlock()
		case ReferrersTag:
			l.mu.Lock()
			l.noAPI[repo] = true
			l.mu.Unlock()
			tag := subject.Digest.Algorithm + "-" + subject.Digest.Hex
			l.generatedAt(repo, "manifests", tag, types.OCIImageIndex, false, func(ctx context.Context, w io.Writer) error {
				return writeIndex(ctx, w, LiarReferrers, entry)
			})
		}
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: subject}
	})
}

// EndlessBlob: an honest image manifest with a layer that claims 1 MiB (of
// zeros); the liar streams 0xff bytes for it forever (no Content-Length),
// until the client hangs up. Lie.Blob is the layer's descriptor.
func (l *Liar) EndlessBlob() Lie {
	return l.once("endless-blob", func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		claimed := make([]byte, LiarEndlessClaimed)
		layer := blobDescriptor(types.OCILayer, claimed)
		l.route(repo, "blobs", layer.Digest.String(), &resource{
			contentType: "application/octet-stream", size: -1, chunked: true,
			body: func(ctx context.Context, w io.Writer) error { return repeatByte(ctx, w, 0xff, -1) },
		})
		d := l.honestManifest(repo, "latest", imageManifest(cfg, []v1.Descriptor{layer}, `""`))
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d, Blob: layer}
	})
}

// StalledManifest: GET REPO:latest (and by digest) announces an honest
// image manifest's length, sends its first half, then sends nothing more
// and holds the connection open until the client hangs up.
func (l *Liar) StalledManifest() Lie {
	return l.once("stalled-manifest", func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		raw := imageManifest(cfg, nil, `"stalled"`)
		d := manifestDesc(raw)
		return l.manifestLie(repo, d, stalled(raw, string(d.MediaType)))
	})
}

// StalledBlob: an honest image manifest whose 64 KiB layer the liar starts
// to send, then stops sending halfway, holding the connection open.
// Lie.Blob is the layer's descriptor.
func (l *Liar) StalledBlob() Lie {
	return l.once("stalled-blob", func(repo string) Lie {
		cfg := l.honestBlob(repo, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		data := bytes.Repeat([]byte("stalled "), 8<<10)
		layer := blobDescriptor(types.OCILayer, data)
		l.route(repo, "blobs", layer.Digest.String(), stalled(data, "application/octet-stream"))
		d := l.honestManifest(repo, "latest", imageManifest(cfg, []v1.Descriptor{layer}, `""`))
		return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d, Blob: layer}
	})
}

// manifestLie serves r as the manifest d of repo, by tag latest and by
// digest, announcing d's digest.
func (l *Liar) manifestLie(repo string, d v1.Descriptor, r *resource) Lie {
	r.digest = d.Digest.String()
	l.route(repo, "manifests", "latest", r)
	l.route(repo, "manifests", d.Digest.String(), r)
	return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: d}
}

// stalled announces b's length, sends half of b, and then nothing until the
// request ends.
func stalled(b []byte, contentType string) *resource {
	return &resource{contentType: contentType, size: int64(len(b)), body: func(ctx context.Context, w io.Writer) error {
		if _, err := w.Write(b[:len(b)/2]); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-ctx.Done()
		return ctx.Err()
	}}
}

// once builds the lie name (in repository "lies/<name>") the first time it
// is asked for.
func (l *Liar) once(name string, build func(repo string) Lie) Lie {
	l.mu.Lock()
	lie, ok := l.lies[name]
	l.mu.Unlock()
	if ok {
		return lie
	}
	lie = build("lies/" + name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.lies[name]; ok {
		return prev
	}
	l.lies[name] = lie
	return lie
}

func (l *Liar) route(repo, kind, id string, r *resource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.routes[repo+" "+kind+" "+id] = r
}

func (l *Liar) honestBlob(repo string, mt types.MediaType, data []byte) v1.Descriptor {
	d := blobDescriptor(mt, data)
	l.route(repo, "blobs", d.Digest.String(), fixed(data, "application/octet-stream"))
	return d
}

// honestManifest serves raw under its digest (and tag, if not empty).
func (l *Liar) honestManifest(repo, tag string, raw []byte) v1.Descriptor {
	d := manifestDesc(raw)
	r := fixed(raw, d.MediaType)
	r.digest = d.Digest.String()
	l.route(repo, "manifests", d.Digest.String(), r)
	if tag != "" {
		l.route(repo, "manifests", tag, r)
	}
	return d
}

// generated serves the manifest body writes, honestly (its digest is worked
// out by generating it once), under its digest and tag latest.
func (l *Liar) generated(repo string, mt types.MediaType, chunked bool, body func(ctx context.Context, w io.Writer) error) Lie {
	r := l.generatedAt(repo, "manifests", "latest", mt, chunked, body)
	l.route(repo, "manifests", r.digest, r)
	h, _ := v1.NewHash(r.digest)
	return Lie{Ref: l.Host + "/" + repo + ":latest", Descriptor: v1.Descriptor{MediaType: mt, Size: r.size, Digest: h}}
}

func (l *Liar) generatedAt(repo, kind, id string, mt types.MediaType, chunked bool, body func(ctx context.Context, w io.Writer) error) *resource {
	h := sha256.New()
	cw := &countingWriter{w: h}
	if err := body(context.Background(), cw); err != nil {
		panic(err) // writing to a hash does not fail
	}
	r := &resource{contentType: string(mt), size: cw.n, chunked: chunked,
		digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), body: body}
	l.route(repo, kind, id, r)
	return r
}

func (l *Liar) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
		return
	}
	repo, kind, id, ok := splitPath(r.URL.Path)
	l.mu.Lock()
	l.requests[r.Method+" "+kind]++
	res := l.routes[repo+" "+kind+" "+id]
	noAPI := l.noAPI[repo]
	paged, isPaged := l.paged[repo]
	l.mu.Unlock()
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such thing")
		return
	}
	if kind == "referrers" && res == nil {
		switch {
		case noAPI:
			http.NotFound(w, r)
		case isPaged && id == paged.subject.String():
			l.servePage(w, r, paged)
		default:
			// The API exists; nothing refers to that digest.
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			l.write(w, r, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
		}
		return
	}
	if res == nil {
		code := map[string]string{"manifests": "MANIFEST_UNKNOWN", "blobs": "BLOB_UNKNOWN"}[kind]
		ociError(w, http.StatusNotFound, code, "unknown to the liar")
		return
	}
	h := w.Header()
	h.Set("Content-Type", res.contentType)
	if res.digest != "" {
		h.Set("Docker-Content-Digest", res.digest)
	}
	if res.size >= 0 && (r.Method == http.MethodHead || !res.chunked) {
		h.Set("Content-Length", strconv.FormatInt(res.size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_ = res.body(r.Context(), &countingWriter{w: w, total: &l.served})
}

func (l *Liar) servePage(w http.ResponseWriter, r *http.Request, p pagedList) {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if n < 0 || n >= len(p.pages) {
		n = 0
	}
	if n+1 < len(p.pages) {
		w.Header().Set("Link", fmt.Sprintf(`<%s?page=%d>; rel="next"`, r.URL.Path, n+1))
	}
	w.Header().Set("Content-Type", string(types.OCIImageIndex))
	l.write(w, r, p.pages[n])
}

func (l *Liar) write(w http.ResponseWriter, r *http.Request, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodGet {
		n, _ := w.Write(b)
		l.served.Add(int64(n))
	}
}

// splitPath splits /v2/<repo>/<kind>/<id>, kind one of manifests, blobs,
// referrers.
func splitPath(p string) (repo, kind, id string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", "", false
	}
	for _, k := range []string{"manifests", "blobs", "referrers"} {
		if i := strings.LastIndex(rest, "/"+k+"/"); i > 0 {
			return rest[:i], k, rest[i+len(k)+2:], true
		}
	}
	return "", "", "", false
}

func ociError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func fixed(b []byte, mt types.MediaType) *resource {
	return &resource{contentType: string(mt), size: int64(len(b)), body: func(_ context.Context, w io.Writer) error {
		_, err := w.Write(b)
		return err
	}}
}

func imageManifest(cfg v1.Descriptor, layers []v1.Descriptor, note string) []byte {
	if layers == nil {
		layers = []v1.Descriptor{}
	}
	b, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: layers,
		Annotations: map[string]string{"dev.seal.liar": strings.Trim(note, `"`)}})
	return b
}

func indexOf(children ...v1.Descriptor) []byte {
	b, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: children})
	return b
}

func manifestDesc(raw []byte) v1.Descriptor {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	_ = json.Unmarshal(raw, &probe)
	return blobDescriptor(probe.MediaType, raw)
}

func blobDescriptor(mt types.MediaType, data []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: mt, Size: int64(len(data)), Digest: v1.Hash{Algorithm: "sha256", Hex: hashHex(data)}}
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeIndex writes an OCI index of n entries, entry(i) each.
func writeIndex(ctx context.Context, w io.Writer, n int, entry func(i int) string) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		if _, err := bw.WriteString(entry(i)); err != nil {
			return err
		}
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	bw.WriteString(`]}`)
	return bw.Flush()
}

// repeatByte writes n copies of c (forever when n < 0) in 32 KiB writes.
func repeatByte(ctx context.Context, w io.Writer, c byte, n int64) error {
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = c
	}
	for n != 0 {
		chunk := buf
		if n > 0 && n < int64(len(chunk)) {
			chunk = chunk[:n]
		}
		m, err := w.Write(chunk)
		if err != nil {
			return err
		}
		if n > 0 {
			n -= int64(m)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

type countingWriter struct {
	w     io.Writer
	n     int64
	total *atomic.Int64
}

// Flush sends what was written so far (the stalled lies need it sent).
func (c *countingWriter) Flush() {
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.total != nil {
		c.total.Add(int64(n))
	}
	return n, err
}

// Cost is what running a function cost the process: the bounds a hostile
// test asserts.
type Cost struct {
	Elapsed time.Duration
	// HeapGrowth is the highest heap (HeapAlloc, sampled every 2 ms and at
	// the end) above the heap before, after a GC.
	HeapGrowth uint64
	// Allocated is every byte allocated meanwhile, garbage included.
	Allocated uint64
}

func (c Cost) String() string {
	return fmt.Sprintf("%v, heap +%.1f MiB, %.1f MiB allocated", c.Elapsed.Round(time.Millisecond),
		float64(c.HeapGrowth)/(1<<20), float64(c.Allocated)/(1<<20))
}

// Measure runs fn and reports its cost. Measure whole operations, one at a
// time: everything the process allocates meanwhile (a liar in the same
// process included) counts.
func Measure(fn func()) Cost {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	peak.Store(before.HeapAlloc)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	start := time.Now()
	fn()
	elapsed := time.Since(start)
	close(stop)
	<-done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	p := max(peak.Load(), after.HeapAlloc)
	return Cost{Elapsed: elapsed, HeapGrowth: p - min(p, before.HeapAlloc), Allocated: after.TotalAlloc - before.TotalAlloc}
}
