package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The liar is checked over plain HTTP, without seal's client: each lie must
// be exactly the lie it claims, or the hostile tests prove nothing.

type liarGet struct {
	status int
	header http.Header
	body   []byte
	length int64
}

func liarDo(t *testing.T, method, url string, limit int64) liarGet {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := liarClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		t.Fatal(err)
	}
	return liarGet{status: resp.StatusCode, header: resp.Header, body: body, length: resp.ContentLength}
}

func hexOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// manifestURL is the URL of REPO's manifest id (a tag or digest).
func (l *Liar) manifestURL(lie Lie, id string) string {
	return l.URL + "/v2/" + strings.TrimPrefix(lie.Repo(), l.Host+"/") + "/manifests/" + id
}

func (l *Liar) blobURL(lie Lie, h v1.Hash) string {
	return l.URL + "/v2/" + strings.TrimPrefix(lie.Repo(), l.Host+"/") + "/blobs/" + h.String()
}

func mustIndex(t *testing.T, raw []byte) v1.IndexManifest {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("not an index: %v", err)
	}
	return idx
}

func TestLiarPing(t *testing.T) {
	l := NewLiar(t)
	if g := liarDo(t, http.MethodGet, l.URL+"/v2/", 1<<10); g.status != http.StatusOK {
		t.Fatalf("ping: %d", g.status)
	}
	if !strings.HasPrefix(l.Host, "127.0.0.1:") {
		t.Fatalf("liar listens on %s, not loopback", l.Host)
	}
}

func TestLiarOtherBytes(t *testing.T) {
	l := NewLiar(t)
	m := l.OtherManifest()
	for _, id := range []string{"latest", m.Descriptor.Digest.String()} {
		head := liarDo(t, http.MethodHead, l.manifestURL(m, id), 0)
		get := liarDo(t, http.MethodGet, l.manifestURL(m, id), 1<<20)
		if head.header.Get("Docker-Content-Digest") != m.Descriptor.Digest.String() || head.length != m.Descriptor.Size {
			t.Errorf("HEAD %s announces %s, %d bytes; the lie is %v", id, head.header.Get("Docker-Content-Digest"), head.length, m.Descriptor)
		}
		if int64(len(get.body)) != m.Descriptor.Size || hexOf(get.body) == m.Descriptor.Digest.Hex {
			t.Errorf("GET %s served %d bytes hashing to %s: not a same-length lie about %s", id, len(get.body), hexOf(get.body), m.Descriptor.Digest)
		}
	}

	b := l.OtherBlob()
	man := liarDo(t, http.MethodGet, l.manifestURL(b, b.Descriptor.Digest.String()), 1<<20)
	if hexOf(man.body) != b.Descriptor.Digest.Hex || !bytes.Contains(man.body, []byte(b.Blob.Digest.Hex)) {
		t.Fatalf("the manifest of the blob lie is not honest or does not list %s", b.Blob.Digest)
	}
	blob := liarDo(t, http.MethodGet, l.blobURL(b, b.Blob.Digest), 1<<20)
	if int64(len(blob.body)) != b.Blob.Size || hexOf(blob.body) == b.Blob.Digest.Hex {
		t.Errorf("blob served %d bytes hashing to %s: not a same-length lie about %v", len(blob.body), hexOf(blob.body), b.Blob)
	}
}

func TestLiarHugeManifest(t *testing.T) {
	l := NewLiar(t)
	for _, chunked := range []bool{true, false} {
		m := l.HugeManifest(chunked)
		if m.Descriptor.Size != LiarManifestSize {
			t.Fatalf("size %d, want %d", m.Descriptor.Size, LiarManifestSize)
		}
		head := liarDo(t, http.MethodHead, l.manifestURL(m, "latest"), 0)
		if head.length != LiarManifestSize || head.header.Get("Docker-Content-Digest") != m.Descriptor.Digest.String() {
			t.Errorf("HEAD: %d bytes, digest %s", head.length, head.header.Get("Docker-Content-Digest"))
		}
		resp, err := liarClient().Get(l.manifestURL(m, m.Descriptor.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		if chunked != (resp.ContentLength < 0) {
			t.Errorf("chunked=%v but Content-Length %d", chunked, resp.ContentLength)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != LiarManifestSize || hex.EncodeToString(h.Sum(nil)) != m.Descriptor.Digest.Hex {
			t.Errorf("GET streamed %d bytes (%v); honest digest: %v", n, err, hex.EncodeToString(h.Sum(nil)) == m.Descriptor.Digest.Hex)
		}
	}
}

func TestLiarWideIndex(t *testing.T) {
	l := NewLiar(t)
	m := l.WideIndex()
	g := liarDo(t, http.MethodGet, l.manifestURL(m, "latest"), 64<<20)
	if g.length >= 0 || hexOf(g.body) != m.Descriptor.Digest.Hex || int64(len(g.body)) != m.Descriptor.Size {
		t.Fatalf("Content-Length %d; %d bytes, honest digest %v", g.length, len(g.body), hexOf(g.body) == m.Descriptor.Digest.Hex)
	}
	idx := mustIndex(t, g.body)
	seen := map[v1.Hash]bool{}
	for _, d := range idx.Manifests {
		seen[d.Digest] = true
	}
	if len(idx.Manifests) != LiarIndexEntries || len(seen) != LiarIndexEntries {
		t.Fatalf("%d entries, %d distinct, want %d", len(idx.Manifests), len(seen), LiarIndexEntries)
	}
	t.Logf("wide index: %d entries, %d bytes", len(idx.Manifests), len(g.body))
}

func TestLiarChains(t *testing.T) {
	l := NewLiar(t)

	c := l.Cycle()
	a := liarDo(t, http.MethodGet, l.manifestURL(c, c.Descriptor.Digest.String()), 1<<20)
	b := mustIndex(t, a.body).Manifests[0]
	bRaw := liarDo(t, http.MethodGet, l.manifestURL(c, b.Digest.String()), 1<<20)
	if hexOf(bRaw.body) != b.Digest.Hex {
		t.Fatal("B is not served honestly")
	}
	x := mustIndex(t, bRaw.body).Manifests[0]
	again := liarDo(t, http.MethodGet, l.manifestURL(c, x.Digest.String()), 1<<20)
	if !bytes.Equal(again.body, a.body) || x.Size != int64(len(a.body)) || hexOf(again.body) == x.Digest.Hex {
		t.Fatalf("B does not list A back (under a digest A does not have)")
	}

	d := l.DeepChain()
	cur := d.Descriptor
	for i := 0; i < LiarChainDepth; i++ {
		g := liarDo(t, http.MethodGet, l.manifestURL(d, cur.Digest.String()), 1<<20)
		if hexOf(g.body) != cur.Digest.Hex {
			t.Fatalf("level %d is not honest", i)
		}
		cur = mustIndex(t, g.body).Manifests[0]
	}
	if cur.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("level %d is %s, want the image", LiarChainDepth, cur.MediaType)
	}

	f := l.FanOut()
	cur = f.Descriptor
	for i := 0; i < LiarFanOutDepth; i++ {
		g := liarDo(t, http.MethodGet, l.manifestURL(f, cur.Digest.String()), 4<<20)
		idx := mustIndex(t, g.body)
		if hexOf(g.body) != cur.Digest.Hex || len(idx.Manifests) != LiarFanOut || idx.Manifests[0].Digest != idx.Manifests[LiarFanOut-1].Digest {
			t.Fatalf("fan-out level %d: %d entries", i, len(idx.Manifests))
		}
		cur = idx.Manifests[0]
	}
}

func TestLiarReferrers(t *testing.T) {
	l := NewLiar(t)
	repoPath := func(lie Lie) string { return l.URL + "/v2/" + strings.TrimPrefix(lie.Repo(), l.Host+"/") }

	api := l.Referrers(ReferrersAPI)
	g := liarDo(t, http.MethodGet, repoPath(api)+"/referrers/"+api.Descriptor.Digest.String(), 16<<20)
	if n := len(mustIndex(t, g.body).Manifests); n != LiarReferrers || g.header.Get("Content-Type") != string(types.OCIImageIndex) {
		t.Fatalf("referrers API: %d entries (%s)", n, g.header.Get("Content-Type"))
	}
	t.Logf("referrers answer: %d bytes", len(g.body))
	other := liarDo(t, http.MethodGet, repoPath(api)+"/referrers/sha256:"+strings.Repeat("0", 64), 1<<20)
	if other.status != http.StatusOK || len(mustIndex(t, other.body).Manifests) != 0 {
		t.Fatal("the API does not answer an empty list for other digests")
	}

	paged := l.Referrers(ReferrersPaged)
	url, total, pages := repoPath(paged)+"/referrers/"+paged.Descriptor.Digest.String(), 0, 0
	for url != "" {
		g := liarDo(t, http.MethodGet, url, 1<<20)
		total += len(mustIndex(t, g.body).Manifests)
		pages++
		url = ""
		if link := g.header.Get("Link"); link != "" {
			url = l.URL + strings.TrimPrefix(strings.Split(link, ">")[0], "<")
		}
	}
	if total != LiarReferrers || pages != LiarReferrers/LiarReferrersPage {
		t.Fatalf("paged: %d referrers in %d pages", total, pages)
	}

	tag := l.Referrers(ReferrersTag)
	if g := liarDo(t, http.MethodGet, repoPath(tag)+"/referrers/"+tag.Descriptor.Digest.String(), 1<<10); g.status != http.StatusNotFound {
		t.Fatalf("no-API repository answers referrers with %d", g.status)
	}
	fallback := "sha256-" + tag.Descriptor.Digest.Hex
	g = liarDo(t, http.MethodGet, l.manifestURL(tag, fallback), 16<<20)
	if n := len(mustIndex(t, g.body).Manifests); n != LiarReferrers {
		t.Fatalf("fallback tag: %d entries", n)
	}
}

func TestLiarEndlessBlob(t *testing.T) {
	l := NewLiar(t)
	e := l.EndlessBlob()
	resp, err := liarClient().Get(l.blobURL(e, e.Blob.Digest))
	if err != nil {
		t.Fatal(err)
	}
	const read = 4 * LiarEndlessClaimed
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, read))
	resp.Body.Close()
	if err != nil || n != read || resp.ContentLength >= 0 {
		t.Fatalf("read %d of the endless blob (%v), Content-Length %d", n, err, resp.ContentLength)
	}
	// The liar counts a write once it returns, which can be after the client
	// has read its bytes: wait for the count to catch up.
	for deadline := time.Now().Add(5 * time.Second); l.Served() < read && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Served() < read || l.Requests("GET blobs") != 1 {
		t.Fatalf("served %d bytes, %d blob GETs", l.Served(), l.Requests("GET blobs"))
	}
}

// liarClient never reuses connections: an endless body read in part must
// not leave its connection to the next request.
func liarClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
