package registry_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/internal/testenv"
)

// pushed pushes a random image to host/repo:v1 and returns the digests of
// its config and first layer.
func pushed(t *testing.T, host, repo string, layerSize int64, opts ...remote.Option) (config, layer string) {
	t.Helper()
	img, err := random.Image(layerSize, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Config.Digest.String(), m.Layers[0].Digest.String()
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func ask(h http.Handler, method, path string, header http.Header) answer {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	hdr := w.Result().Header
	hdr.Del("Date")
	return answer{status: w.Code, header: hdr, body: w.Body.Bytes()}
}

func sameAnswer(t *testing.T, what string, got, want answer) {
	t.Helper()
	if got.status != want.status || !bytes.Equal(got.body, want.body) {
		t.Errorf("%s: %d with %d bytes, Distribution answers %d with %d bytes", what, got.status, len(got.body), want.status, len(want.body))
	}
	keys := func(h http.Header) []string {
		var k []string
		for key := range h {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if !slices.Equal(keys(got.header), keys(want.header)) {
		t.Errorf("%s: headers %v, Distribution sends %v", what, keys(got.header), keys(want.header))
	}
	for k, v := range want.header {
		if !slices.Equal(got.header[k], v) {
			t.Errorf("%s: %s = %q, Distribution sends %q", what, k, got.header[k], v)
		}
	}
}

// Small blobs are served without Distribution's 4 MiB read buffer, and the
// answer is Distribution's, byte for byte and header for header, for every
// kind of blob request a client makes.
func TestSmallBlobsAnswerAsDistribution(t *testing.T) {
	for _, tc := range storages {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.cfg(t))
			handler, app := s.Handlers()
			cfgDigest, layer := pushed(t, s.Addr(), "app", 2048)
			_, other := pushed(t, s.Addr(), "other", 1024)
			_, big := pushed(t, s.Addr(), "big", registry.SmallBlobLimit+1)
			etag := ask(app, "GET", "/v2/app/blobs/"+layer, nil).header.Get("ETag")
			for _, c := range []struct {
				what, method, path string
				header             http.Header
			}{
				{"GET config", "GET", "/v2/app/blobs/" + cfgDigest, nil},
				{"GET layer", "GET", "/v2/app/blobs/" + layer, nil},
				{"HEAD layer", "HEAD", "/v2/app/blobs/" + layer, nil},
				{"range", "GET", "/v2/app/blobs/" + layer, http.Header{"Range": {"bytes=10-99"}}},
				{"bad range", "GET", "/v2/app/blobs/" + layer, http.Header{"Range": {"bytes=99999-"}}},
				{"if-none-match", "GET", "/v2/app/blobs/" + layer, http.Header{"If-None-Match": {etag}}},
				{"unknown blob", "GET", "/v2/app/blobs/sha256:" + string(bytes.Repeat([]byte("0"), 64)), nil},
				{"blob of another repository", "GET", "/v2/app/blobs/" + other, nil},
				{"unknown repository", "GET", "/v2/nothing/blobs/" + layer, nil},
				{"malformed digest", "GET", "/v2/app/blobs/sha256:xyz", nil},
				{"large blob", "GET", "/v2/big/blobs/" + big, nil},
				{"upload status", "GET", "/v2/app/blobs/uploads/1234", nil},
			} {
				sameAnswer(t, c.what, ask(handler, c.method, c.path, c.header), ask(app, c.method, c.path, c.header))
			}

			// What it is for: 50 reads of a small blob allocate kilobytes,
			// not the 200 MiB of Distribution's buffers.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 50 {
				if a := ask(handler, "GET", "/v2/app/blobs/"+layer, nil); a.status != http.StatusOK {
					t.Fatalf("GET layer: %d", a.status)
				}
			}
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("50 small blob reads allocated %d MiB", grew>>20)
			}
		})
	}
}

// With htpasswd, a small blob or a manifest is served only to whom
// Distribution would serve it: anonymous and wrong-password requests get
// Distribution's 401 and challenge.
func TestFastReadsKeepAuth(t *testing.T) {
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	const user, pass = "alice", "correct-horse-battery"
	testenv.WriteHTPasswd(t, htpasswd, user, pass)
	s := start(t, registry.Config{Memory: true, HTPasswd: htpasswd})
	front, app := s.Handlers()
	_, layer := pushed(t, s.Addr(), "app", 512, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	auth := func(u, p string) http.Header {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return http.Header{"Authorization": r.Header["Authorization"]}
	}
	for _, path := range []string{"/v2/app/blobs/" + layer, "/v2/app/manifests/v1"} {
		for _, c := range []struct {
			what   string
			header http.Header
			status int
		}{
			{"anonymous", nil, http.StatusUnauthorized},
			{"wrong password", auth(user, "wrong"), http.StatusUnauthorized},
			{"unknown user", auth("mallory", pass), http.StatusUnauthorized},
			{"right password", auth(user, pass), http.StatusOK},
		} {
			got, want := ask(front, "GET", path, c.header), ask(app, "GET", path, c.header)
			if got.status != c.status {
				t.Errorf("%s %s: %d, want %d", path, c.what, got.status, c.status)
			}
			sameAnswer(t, path+" "+c.what, got, want)
		}
	}
}
