package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what the proxy does to a request instead of (or on top of)
// forwarding it.
type Fault struct {
	Status     int           // answer with this status and an OCI error body, without forwarding
	RetryAfter string        // Retry-After header sent with Status
	Reset      bool          // drop the connection without an answer (TCP RST), without forwarding
	Truncate   bool          // forward, then cut the response body off halfway and drop the connection
	Delay      time.Duration // forward, and answer only after Delay
}

// The faults a registry (or what stands in front of it) really produces.
var (
	Fault500      = Fault{Status: http.StatusInternalServerError}
	Fault502      = Fault{Status: http.StatusBadGateway}
	Fault503      = Fault{Status: http.StatusServiceUnavailable}
	Fault429      = Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}
	FaultReset    = Fault{Reset: true}
	FaultTruncate = Fault{Truncate: true}
	FaultSlow     = Fault{Delay: 300 * time.Millisecond}

	// AllFaults is what a random rule chooses from by default.
	AllFaults = []Fault{Fault500, Fault502, Fault503, Fault429, FaultReset, FaultTruncate, FaultSlow}
)

func (f Fault) String() string {
	switch {
	case f.Reset:
		return "reset"
	case f.Truncate:
		return "truncate"
	case f.Status != 0:
		return fmt.Sprint(f.Status)
	case f.Delay != 0:
		return "slow"
	}
	return "none"
}

// FaultRule says which requests fail and how. Method and Path are regular
// expressions matched against the request method and URL path (empty
// matches all; QuoteMeta literal parts). A rule is either deterministic
// (First > 0: the first First matching requests get Fault, 503 if Fault is
// zero) or random (Rate > 0: each matching request fails with probability
// Rate, the fault drawn from Faults, AllFaults if empty, from a source seeded
// with Seed). The first rule that decides to fail a request wins.
type FaultRule struct {
	Method string
	Path   string

	First int
	// PerRequest counts First separately for every distinct method and URL,
	// so every request fails First times before it passes.
	PerRequest bool
	Fault      Fault

	Rate   float64
	Seed   int64
	Faults []Fault
}

type ruleState struct {
	FaultRule
	method, path *regexp.Regexp
	seen         map[string]int // by key ("" when not PerRequest)
	rnd          *rand.Rand
}

// FaultProxy is a reverse proxy on 127.0.0.1 in front of a registry that
// injects faults by rule and counts requests by method and path class
// ("GET manifest", "HEAD blob", "POST upload", "POST mount", "PUT upload",
// "GET referrers", "GET tags", "GET ping", "GET other").
type FaultProxy struct {
	URL string // http://127.0.0.1:PORT

	upstream *url.URL
	srv      *httptest.Server
	proxy    *httputil.ReverseProxy

	mu     sync.Mutex
	rules  []*ruleState
	counts map[string]int
	faults map[string]int
	kinds  map[string]int
	log    []string
}

type faultKey struct{}

// NewFaultProxy starts a proxy in front of upstreamURL (http://HOST:PORT)
// applying rules; it stops when the test ends.
func NewFaultProxy(t testing.TB, upstreamURL string, rules ...FaultRule) *FaultProxy {
	t.Helper()
	up, err := url.Parse(upstreamURL)
	if err != nil || up.Host == "" {
		t.Fatalf("fault proxy: bad upstream URL %q: %v", upstreamURL, err)
	}
	p := &FaultProxy{upstream: up, counts: map[string]int{}, faults: map[string]int{}, kinds: map[string]int{}}
	if err := p.setRules(rules); err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			// Keep the Host the client used, so that registries that build
			// absolute URLs (upload locations) send the client back here.
			pr.Out.Host = pr.In.Host
		},
		Transport:      tr,
		ModifyResponse: p.modifyResponse,
		ErrorLog:       log.New(io.Discard, "", 0),
		// Flush every write, so that a truncated body reaches the client
		// before the connection drops.
		FlushInterval: -1,
	}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	t.Cleanup(func() {
		p.srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// Host is the proxy's HOST:PORT, to use in image references.
func (p *FaultProxy) Host() string { return strings.TrimPrefix(p.URL, "http://") }

// SetRules replaces the rules (and their counters).
func (p *FaultProxy) SetRules(rules ...FaultRule) error { return p.setRules(rules) }

func (p *FaultProxy) setRules(rules []FaultRule) error {
	states := make([]*ruleState, 0, len(rules))
	for i, r := range rules {
		s := &ruleState{FaultRule: r, seen: map[string]int{}}
		var err error
		if s.method, err = regexp.Compile(r.Method); err != nil {
			return fmt.Errorf("rule %d: method: %w", i, err)
		}
		if s.path, err = regexp.Compile(r.Path); err != nil {
			return fmt.Errorf("rule %d: path: %w", i, err)
		}
		if r.First <= 0 && r.Rate <= 0 {
			return fmt.Errorf("rule %d: neither First nor Rate", i)
		}
		if r.Rate > 0 {
			s.rnd = rand.New(rand.NewPCG(uint64(r.Seed), 0x5ea1))
			if len(s.Faults) == 0 {
				s.Faults = AllFaults
			}
		}
		if r.First > 0 && s.Fault == (Fault{}) {
			s.Fault = Fault503
		}
		states = append(states, s)
	}
	p.mu.Lock()
	p.rules = states
	p.mu.Unlock()
	return nil
}

// Counts returns the requests received so far by "METHOD class", faulted
// ones included.
func (p *FaultProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
	}
	return m
}

// Count is Counts()[method+" "+class].
func (p *FaultProxy) Count(method, class string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method+" "+class]
}

// Faults returns the faults injected so far by "METHOD class".
func (p *FaultProxy) Faults() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.faults))
	for k, v := range p.faults {
		m[k] = v
	}
	return m
}

// FaultKinds returns the faults injected so far by kind: "500", "429",
// "reset", "truncate", "slow".
func (p *FaultProxy) FaultKinds() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.kinds))
	for k, v := range p.kinds {
		m[k] = v
	}
	return m
}

// Log returns the requests received so far, in order, as "METHOD PATH".
func (p *FaultProxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// ResetCounts zeroes the request and fault counts and the log.
func (p *FaultProxy) ResetCounts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
	p.faults = map[string]int{}
	p.kinds = map[string]int{}
	p.log = nil
}

// PathClass names the kind of registry endpoint a request is for.
func PathClass(r *http.Request) string {
	path := r.URL.Path
	switch {
	case path == "/v2/" || path == "/v2":
		return "ping"
	case strings.Contains(path, "/referrers/"):
		return "referrers"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	case strings.Contains(path, "/blobs/uploads"):
		if r.Method == http.MethodPost && r.URL.Query().Has("mount") {
			return "mount"
		}
		return "upload"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.HasSuffix(path, "/tags/list"):
		return "tags"
	}
	return "other"
}

// pick decides the fault for r, if any. Called with p.mu held.
func (p *FaultProxy) pick(r *http.Request) (Fault, bool) {
	for _, s := range p.rules {
		if !s.method.MatchString(r.Method) || !s.path.MatchString(r.URL.Path) {
			continue
		}
		if s.First > 0 {
			key := ""
			if s.PerRequest {
				key = r.Method + " " + r.URL.RequestURI()
			}
			if s.seen[key] < s.First {
				s.seen[key]++
				return s.Fault, true
			}
			continue
		}
		if s.rnd.Float64() < s.Rate {
			return s.Faults[s.rnd.IntN(len(s.Faults))], true
		}
	}
	return Fault{}, false
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + PathClass(r)
	p.mu.Lock()
	p.counts[key]++
	p.log = append(p.log, r.Method+" "+r.URL.Path)
	f, faulty := p.pick(r)
	if faulty {
		p.faults[key]++
		p.kinds[f.String()]++
	}
	p.mu.Unlock()

	if faulty {
		switch {
		case f.Reset:
			reset(w)
			return
		case f.Status != 0:
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			code := "UNAVAILABLE"
			if f.Status == http.StatusTooManyRequests {
				code = "TOOMANYREQUESTS"
			}
			body := fmt.Sprintf(`{"errors":[{"code":%q,"message":"injected fault"}]}`, code)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(f.Status)
			if r.Method != http.MethodHead {
				io.WriteString(w, body)
			}
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), faultKey{}, f))
	}
	p.proxy.ServeHTTP(w, r)
}

// reset drops the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func (p *FaultProxy) modifyResponse(resp *http.Response) error {
	// Registries that build absolute URLs from their own address would send
	// the client past the proxy.
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Host == p.upstream.Host {
			u.Host = resp.Request.Host
			resp.Header.Set("Location", u.String())
		}
	}
	f, _ := resp.Request.Context().Value(faultKey{}).(Fault)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-resp.Request.Context().Done():
		}
	}
	if f.Truncate {
		if resp.ContentLength <= 0 || resp.Request.Method == http.MethodHead {
			// Nothing to cut: drop the connection instead.
			panic(http.ErrAbortHandler)
		}
		resp.Body = &truncatedBody{r: io.LimitReader(resp.Body, resp.ContentLength/2), c: resp.Body}
	}
	return nil
}

// truncatedBody ends in an error, which makes the reverse proxy abort the
// connection before Content-Length bytes were sent.
type truncatedBody struct {
	r io.Reader
	c io.Closer
}

func (b *truncatedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		err = errors.New("fault proxy: body truncated")
	}
	return n, err
}

func (b *truncatedBody) Close() error { return b.c.Close() }
