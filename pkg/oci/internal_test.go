package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/seal-dev/seal/pkg/fault"
)

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	r := Retry{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	for attempt := 1; attempt < 40; attempt++ {
		for range 20 {
			d := r.delay(attempt, 0)
			step := min(r.BaseDelay<<min(attempt-1, 30), r.MaxDelay)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
	if d := r.delay(1, 700*time.Millisecond); d != 700*time.Millisecond {
		t.Fatalf("Retry-After 700ms: delay %v", d)
	}
	if d := r.delay(1, time.Hour); d != time.Second {
		t.Fatalf("Retry-After 1h: delay %v, want MaxDelay", d)
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		status int
		err    error
		want   bool
	}{
		{status: 429, want: true},
		{status: 500, want: true},
		{status: 502, want: true},
		{status: 503, want: true},
		{status: 504, want: true},
		{status: 400},
		{status: 401},
		{status: 404},
		{err: io.EOF, want: true},
		{err: fmt.Errorf("read: %w", syscall.ECONNRESET), want: true},
		{err: &net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}, want: true},
		{err: context.Canceled},
		{err: errors.New("x509: certificate signed by unknown authority")},
	} {
		var resp *http.Response
		if tc.err == nil {
			resp = &http.Response{StatusCode: tc.status, Header: http.Header{}}
		}
		if got, _ := retryable(resp, tc.err); got != tc.want {
			t.Errorf("retryable(%d, %v) = %v", tc.status, tc.err, got)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want fault.Kind
		msg  string
	}{
		{&statusError{status: 404}, fault.Input, "not found"},
		{&statusError{status: 400, codes: []string{"NAME_UNKNOWN"}}, fault.Input, "not found"},
		{&statusError{status: 401}, fault.Operational, "auth refused for reg.example"},
		{&statusError{status: 403}, fault.Operational, "auth refused for reg.example"},
		{&statusError{status: 400, codes: []string{"DENIED"}}, fault.Operational, "auth refused"},
		{&statusError{status: 503}, fault.Operational, "503"},
		{&statusError{status: 400, codes: []string{"MANIFEST_INVALID"}}, fault.Input, "MANIFEST_INVALID"},
		{&transport.Error{StatusCode: 401}, fault.Operational, "auth refused for reg.example"},
		{errors.New("dial tcp: connection refused"), fault.Operational, "refused"},
		{fault.Inputf("already classified"), fault.Input, "already"},
	} {
		got := classify(tc.err, "reg.example")
		if fault.KindOf(got) != tc.want || !strings.Contains(got.Error(), tc.msg) {
			t.Errorf("classify(%v) = %v (%s), want %s containing %q", tc.err, got, fault.KindOf(got), tc.want, tc.msg)
		}
	}
}

func TestRedactURL(t *testing.T) {
	u, _ := url.Parse("https://user:secret@reg.example/v2/a/blobs/uploads/1?_state=token&digest=sha256:00")
	if got := redactURL(u); got != "https://reg.example/v2/a/blobs/uploads/1" {
		t.Fatalf("redactURL = %s", got)
	}
}

func TestSchemeGuard(t *testing.T) {
	c := NewClient(WithInsecure("plain.example:5000"))
	g := &schemeGuard{inner: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}), plain: c.plainHTTP}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://127.9.9.9/v2/", true},
		{"http://[::1]:80/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"http://plain.example:5000/v2/", true},
		{"http://plain.example:5001/v2/", false},
		{"http://10.0.0.1/v2/", false},
		{"http://169.254.169.254/latest/", false},
		{"https://10.0.0.1/v2/", true},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		_, err := g.RoundTrip(req)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want allowed=%v", tc.url, err, tc.ok)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckRedirect(t *testing.T) {
	check := checkRedirect(func(h string) bool { return strings.HasPrefix(h, "127.") })
	via := func(u string) []*http.Request {
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		return []*http.Request{r}
	}
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"https://reg.example/v2/a/blobs/x", "https://storage.example/blob", true},
		{"https://reg.example/v2/a/blobs/x", "https://169.254.169.254/latest", false},
		{"https://reg.example/v2/a/blobs/x", "https://10.1.1.1/blob", false},
		{"https://reg.example/v2/a/blobs/x", "http://storage.example/blob", false},
		{"http://127.0.0.1:5000/v2/a/blobs/x", "http://127.0.0.1:5001/blob", true},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.to, nil)
		if err := check(req, via(tc.from)); (err == nil) != tc.ok {
			t.Errorf("%s → %s: %v, want allowed=%v", tc.from, tc.to, err, tc.ok)
		}
	}
}

func TestMergeReferrer(t *testing.T) {
	h := func(s string) v1.Hash { d, _ := digestOf("sha256", []byte(s)); return d }
	idx := &v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{
		{Digest: h("a"), Size: 1}, {Digest: h("b"), Size: 1}, {Digest: h("a"), Size: 1},
	}}
	out := mergeReferrer(idx, v1.Descriptor{Digest: h("b"), Size: 2, ArtifactType: "new", Annotations: map[string]string{"k": "v"}})
	if len(out.Manifests) != 2 || out.Manifests[0].Digest != h("a") || out.Manifests[1].ArtifactType != "new" ||
		out.Manifests[1].Annotations["k"] != "v" || out.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("merged %+v", out)
	}
	if len(idx.Manifests) != 3 {
		t.Fatal("merge changed its input")
	}
}

func TestNextLink(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://reg.example/v2/a/referrers/sha256:00", nil)
	for _, tc := range []struct {
		link, want string
		err        bool
	}{
		{"", "", false},
		{`</v2/a/referrers/sha256:00?n=2&last=x>; rel="next"`, "https://reg.example/v2/a/referrers/sha256:00?n=2&last=x", false},
		{`<https://reg.example/next>; rel="prev", </v2/n>; rel="next"`, "https://reg.example/v2/n", false},
		{`<https://evil.example/next>; rel="next"`, "", true},
	} {
		resp := &http.Response{Header: http.Header{}, Request: req}
		if tc.link != "" {
			resp.Header.Set("Link", tc.link)
		}
		got, err := nextLink(resp)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Link %q: %q, %v", tc.link, got, err)
		}
	}
}

func TestManifestMediaType(t *testing.T) {
	for _, tc := range []struct {
		raw, contentType, want string
		err                    bool
	}{
		{`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, "", "application/vnd.oci.image.index.v1+json", false},
		{`{"schemaVersion":2,"manifests":[]}`, "application/json", "application/vnd.oci.image.index.v1+json", false},
		{`{"schemaVersion":2,"config":{}}`, "", "application/vnd.oci.image.manifest.v1+json", false},
		{`{"schemaVersion":2,"config":{}}`, "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.v2+json", false},
		{`{"schemaVersion":1,"fsLayers":[]}`, "", "", true},
		{`{"schemaVersion":2,"mediaType":"text/html"}`, "", "", true},
		{`<html>`, "", "", true},
		{`{"schemaVersion":2}`, "", "", true},
	} {
		got, err := manifestMediaType([]byte(tc.raw), tc.contentType)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s (%s): %q, %v", tc.raw, tc.contentType, got, err)
		}
	}
}

// The stall timeout bounds the silence between bytes, not the whole body: a
// body that trickles in more slowly than the timeout in total, but never
// pauses as long, is read to its end; one that pauses longer is cut.
func TestStallReader(t *testing.T) {
	const after = 400 * time.Millisecond
	trickle := func(pause time.Duration, n int) io.ReadCloser {
		pr, pw := io.Pipe()
		go func() {
			for range n {
				time.Sleep(pause)
				if _, err := pw.Write([]byte{'x'}); err != nil {
					return
				}
			}
			pw.Close()
		}()
		return pr
	}
	got, err := io.ReadAll(newStallReader(trickle(30*time.Millisecond, 25), after))
	if err != nil || len(got) != 25 {
		t.Fatalf("a steady trickle over %v: %d bytes, %v", 25*30*time.Millisecond, len(got), err)
	}
	start := time.Now()
	got, err = io.ReadAll(newStallReader(trickle(time.Hour, 1), after))
	if !errors.Is(err, io.ErrUnexpectedEOF) || fault.KindOf(err) != fault.Operational || len(got) != 0 {
		t.Fatalf("a silent body: %d bytes, %v", len(got), err)
	}
	if took := time.Since(start); took < after || took > 10*after {
		t.Errorf("cut after %v, want about %v", took, after)
	}
}
