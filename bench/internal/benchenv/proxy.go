package benchenv

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seal-dev/seal/internal/testenv"
)

// Proxy is a reverse proxy on 127.0.0.1 in front of a registry that counts
// requests, the bytes of request and response bodies, and logs every
// request with its answer's status.
type Proxy struct {
	Host string // HOST:PORT, to use in image references

	srv      *http.Server
	bytes    atomic.Int64
	requests atomic.Int64

	mu  sync.Mutex
	log []Request
}

// Request is one request the proxy forwarded.
type Request struct {
	Method string
	Path   string
	Status int
}

// NewProxy starts a proxy in front of upstream (HOST:PORT).
func NewProxy(upstream string) (*Proxy, error) {
	up := &url.URL{Scheme: "http", Host: upstream}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Host: ln.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host // absolute upload locations come back here
		},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				if u, err := url.Parse(loc); err == nil && u.Host == upstream {
					u.Host = p.Host
					resp.Header.Set("Location", u.String())
				}
			}
			resp.Body = &countingBody{rc: resp.Body, n: &p.bytes}
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
		// A connection to the registry for each of the client's: with the
		// default two idle connections per host, a client's concurrent
		// workers would have the proxy dial the registry anew for most of
		// their requests, a cost of the harness charged to the client.
		Transport: proxyTransport(),
	}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Body != nil {
			r.Body = &countingBody{rc: r.Body, n: &p.bytes}
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(sw, r)
		p.mu.Lock()
		p.log = append(p.log, Request{Method: r.Method, Path: r.URL.Path, Status: sw.status})
		p.mu.Unlock()
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func proxyTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

// Reset zeroes the counts and the log.
func (p *Proxy) Reset() {
	p.bytes.Store(0)
	p.requests.Store(0)
	p.mu.Lock()
	p.log = nil
	p.mu.Unlock()
}

// Bytes is the bytes of request and response bodies since the last Reset.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// Requests is the requests received since the last Reset.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Log returns the requests answered since the last Reset, in the order
// their answers ended.
func (p *Proxy) Log() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Close stops the proxy.
func (p *Proxy) Close() { _ = p.srv.Close() }

var (
	digestRef   = regexp.MustCompile(`/manifests/[a-z0-9]+:[a-f0-9]+$`)
	fallbackTag = regexp.MustCompile(`/manifests/sha256-[a-f0-9]{64}$`)
	legacyTag   = regexp.MustCompile(`/manifests/sha256-[a-f0-9]{64}\.(sig|att|sbom)$`)
)

// Class names what a request is for, finer than testenv.PathClass for
// manifests: "manifest by tag", "manifest by digest", "fallback tag" (the
// referrers of a digest on a registry without the referrers API), "legacy
// tag" (cosign's .sig/.att), and for a referrers request whether the
// registry answered it (404 means: no API).
func Class(r Request) string {
	class := testenv.PathClass(&http.Request{Method: r.Method, URL: &url.URL{Path: r.Path}})
	switch class {
	case "manifest":
		switch {
		case legacyTag.MatchString(r.Path):
			class = "legacy tag"
		case fallbackTag.MatchString(r.Path):
			class = "fallback tag"
		case digestRef.MatchString(r.Path):
			class = "manifest by digest"
		default:
			class = "manifest by tag"
		}
	case "upload":
		if r.Method == http.MethodPost {
			class = "upload start"
		}
	}
	s := r.Method + " " + class
	if r.Status >= 400 {
		s += " (" + http.StatusText(r.Status) + ")"
	}
	return s
}

// ClassCounts counts log entries by Class.
func ClassCounts(log []Request) map[string]int {
	m := map[string]int{}
	for _, r := range log {
		m[Class(r)]++
	}
	return m
}

// Repository is the repository a request path names ("" for /v2/).
func Repository(path string) string {
	p := strings.TrimPrefix(path, "/v2/")
	for _, sep := range []string{"/manifests/", "/blobs/", "/referrers/", "/tags/"} {
		if i := strings.Index(p, sep); i >= 0 {
			return p[:i]
		}
	}
	return ""
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streamed answers streaming.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type countingBody struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }
