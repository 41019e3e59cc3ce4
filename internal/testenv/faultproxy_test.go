package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func ggcrUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nullLogger())))
	t.Cleanup(srv.Close)
	return srv.URL
}

// freshClient never reuses connections, so that Go's transport does not
// silently retry a request whose reused connection was dropped.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestFaultProxyFirstN(t *testing.T) {
	p := NewFaultProxy(t, ggcrUpstream(t), FaultRule{
		Method: "^GET$", Path: "^/v2/$", First: 2,
		Fault: Fault{Status: http.StatusTooManyRequests, RetryAfter: "7"},
	})
	hc := freshClient()
	for i, want := range []int{429, 429, 200, 200} {
		resp, err := hc.Get(p.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if ra := resp.Header.Get("Retry-After"); (want == 429) != (ra == "7") {
			t.Fatalf("request %d: Retry-After %q", i, ra)
		}
	}
	// HEAD does not match the rule.
	resp, err := hc.Head(p.URL + "/v2/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	if got := p.Count("GET", "ping"); got != 4 {
		t.Errorf("GET ping count = %d, want 4", got)
	}
	if got := p.Faults()["GET ping"]; got != 2 {
		t.Errorf("faults = %d, want 2", got)
	}
}

func TestFaultProxyPerRequest(t *testing.T) {
	p := NewFaultProxy(t, ggcrUpstream(t), FaultRule{First: 1, PerRequest: true})
	hc := freshClient()
	statuses := func(path string) []int {
		var out []int
		for range 2 {
			resp, err := hc.Get(p.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			out = append(out, resp.StatusCode)
		}
		return out
	}
	a := statuses("/v2/")
	b := statuses("/v2/x/tags/list")
	if a[0] != 503 || a[1] != 200 || b[0] != 503 || b[1] == 503 {
		t.Fatalf("statuses %v %v: want each distinct request to fail once", a, b)
	}
}

func TestFaultProxyResetAndTruncate(t *testing.T) {
	up := ggcrUpstream(t)
	// A blob to read through the proxy.
	data := strings.Repeat("seal", 1000)
	req, _ := http.NewRequest(http.MethodPost, up+"/v2/r/blobs/uploads/?digest=sha256:"+sha256Hex(data), strings.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed blob: %v %v", resp, err)
	}
	resp.Body.Close()
	blob := "/v2/r/blobs/sha256:" + sha256Hex(data)

	p := NewFaultProxy(t, up,
		FaultRule{Path: "^/v2/$", First: 1, Fault: FaultReset},
		FaultRule{Path: "/blobs/", First: 1, Fault: FaultTruncate},
	)
	hc := freshClient()
	if _, err := hc.Get(p.URL + "/v2/"); err == nil {
		t.Fatal("reset: no error")
	}
	resp, err = hc.Get(p.URL + blob)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) >= len(data) {
		t.Fatalf("truncate: read %d bytes, err %v; want a short body and unexpected EOF", len(got), err)
	}
	resp, err = hc.Get(p.URL + blob)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != data {
		t.Fatalf("after the fault: %d bytes, %v", len(got), err)
	}
	if c := p.Counts(); c["GET ping"] != 1 || c["GET blob"] != 2 {
		t.Errorf("counts %v", c)
	}
}

func TestFaultProxySlow(t *testing.T) {
	p := NewFaultProxy(t, ggcrUpstream(t), FaultRule{First: 1, Fault: Fault{Delay: 200 * time.Millisecond}})
	start := time.Now()
	resp, err := freshClient().Get(p.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < 200*time.Millisecond || resp.StatusCode != 200 {
		t.Fatalf("slow fault: %v after %v", resp.StatusCode, d)
	}
}

func TestFaultProxyRandomIsSeeded(t *testing.T) {
	up := ggcrUpstream(t)
	run := func() []int {
		p := NewFaultProxy(t, up, FaultRule{Rate: 0.5, Seed: 42, Faults: []Fault{Fault500, Fault502, Fault503}})
		hc := freshClient()
		var out []int
		for range 20 {
			resp, err := hc.Get(p.URL + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			out = append(out, resp.StatusCode)
		}
		return out
	}
	a, b := run(), run()
	failed := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different faults: %v vs %v", a, b)
		}
		if a[i] != 200 {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Fatalf("rate 0.5 gave %d failures of %d: %v", failed, len(a), a)
	}
}

func TestPathClass(t *testing.T) {
	for _, tc := range []struct{ method, url, want string }{
		{"GET", "/v2/", "ping"},
		{"HEAD", "/v2/a/b/manifests/v1", "manifest"},
		{"GET", "/v2/a/blobs/sha256:00", "blob"},
		{"POST", "/v2/a/blobs/uploads/", "upload"},
		{"POST", "/v2/a/blobs/uploads/?mount=sha256:00&from=b", "mount"},
		{"PUT", "/v2/a/blobs/uploads/123?digest=sha256:00", "upload"},
		{"GET", "/v2/a/referrers/sha256:00", "referrers"},
		{"GET", "/v2/a/tags/list", "tags"},
		{"GET", "/token", "other"},
	} {
		r := httptest.NewRequest(tc.method, tc.url, nil)
		if got := PathClass(r); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.url, got, tc.want)
		}
	}
}

func nullLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
