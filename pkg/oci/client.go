// Package oci is seal's registry layer: it resolves references to digests,
// fetches manifests and blobs with size caps and digest checks, pushes in a
// safe order, copies (mount or stream) and reads/writes OCI 1.1 referrers.
//
// It is built on go-containerregistry's name, authn and transport packages.
// The HTTP requests themselves are made here, over ggcr's authenticated
// transport, because seal needs what ggcr's remote package does not give:
// manifest size caps, Retry-After, detection of the referrers API by asking,
// and error kinds (pkg/fault) that map to the CLI's exit codes.
package oci

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/seal-dev/seal/pkg/fault"
)

// DefaultManifestLimit is the largest manifest seal reads or writes, the
// limit most registries enforce as well.
const DefaultManifestLimit = 4 << 20

// Retry bounds the retries of transient registry failures (429, 5xx,
// connection resets). Zero fields take the defaults.
type Retry struct {
	Attempts   int           // total tries of one request, first included (default 5)
	MaxDelay   time.Duration // longest single wait, Retry-After included (default 10s)
	MaxElapsed time.Duration // no new try starts after this much time (default 2m)
	BaseDelay  time.Duration // first backoff step, doubled each try, jittered (default 200ms)
}

// DefaultIndexEntriesLimit is the most manifests one index may list. Real
// multi-platform indexes list tens; the cap bounds the work one index can ask
// of whatever walks it (a copy, index create's gathering, inspect).
const DefaultIndexEntriesLimit = 1000

// DefaultReferrersLimit is the most referrers read for one manifest, from
// all pages of the referrers API or from the fallback tag index: each one
// listed is fetched and verified, so a registry listing thousands would stall
// a verification.
const DefaultReferrersLimit = 1000

// Limits caps what is read from a registry. Zero fields take the defaults.
type Limits struct {
	Manifest int64 // default DefaultManifestLimit
	Blob     int64 // 0: no cap (callers cap small blobs with BlobBytes)
	// IndexEntries caps the manifests an index may list (default
	// DefaultIndexEntriesLimit); a longer index is refused when fetched.
	IndexEntries int
	// Referrers caps the referrers listed for one manifest (default
	// DefaultReferrersLimit); more is refused, not truncated, and a fallback
	// tag index already that long takes no new referrer.
	Referrers int
}

type options struct {
	insecure  []string
	keychain  authn.Keychain
	transport http.RoundTripper
	retry     Retry
	limits    Limits
	stall     time.Duration
}

// Option configures a Client.
type Option func(*options)

// WithInsecure names registries (HOST or HOST:PORT) reached over plain HTTP.
// Loopback registries (127.0.0.0/8, ::1, localhost) always are.
func WithInsecure(hosts ...string) Option {
	return func(o *options) { o.insecure = append(o.insecure, hosts...) }
}

// WithKeychain sets where credentials come from (default: the Docker config
// and its credential helpers).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) { o.keychain = k }
}

// WithTransport sets the base HTTP transport (default: a clone of
// http.DefaultTransport). Retries and authentication are layered on top.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) { o.transport = rt }
}

// WithRetry bounds retries of transient failures.
func WithRetry(r Retry) Option {
	return func(o *options) { o.retry = r }
}

// WithStallTimeout sets how long a response body may send nothing before it
// is cut (default DefaultStallTimeout). Reads of manifests are then retried
// like other transient failures; a streamed blob fails.
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) { o.stall = d }
}

// WithLimits sets the size caps.
func WithLimits(l Limits) Option {
	return func(o *options) { o.limits = l }
}

// Client talks to registries. It is safe for concurrent use; all goroutines
// share one HTTP transport and one token cache.
type Client struct {
	opts     options
	insecure map[string]bool // lower-cased HOST and HOST:PORT
	rt       http.RoundTripper

	mu         sync.Mutex
	transports map[string]*authEntry    // by registry + scopes
	referrers  map[string]bool          // registry → has the referrers API
	probing    map[string]chan struct{} // registry → its referrers API being asked about
	tagLocks   map[string]*sync.Mutex
}

type authEntry struct {
	ready  chan struct{}
	client *http.Client
	err    error
}

// NewClient returns a Client.
func NewClient(opts ...Option) *Client {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.keychain == nil {
		o.keychain = authn.DefaultKeychain
	}
	if o.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Batch commands run several workers against one registry.
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = 2 * time.Minute
		o.transport = t
	}
	o.retry = o.retry.withDefaults()
	if o.stall <= 0 {
		o.stall = DefaultStallTimeout
	}
	if o.limits.Manifest <= 0 {
		o.limits.Manifest = DefaultManifestLimit
	}
	if o.limits.IndexEntries <= 0 {
		o.limits.IndexEntries = DefaultIndexEntriesLimit
	}
	if o.limits.Referrers <= 0 {
		o.limits.Referrers = DefaultReferrersLimit
	}
	c := &Client{
		opts:       o,
		insecure:   map[string]bool{},
		transports: map[string]*authEntry{},
		referrers:  map[string]bool{},
		probing:    map[string]chan struct{}{},
		tagLocks:   map[string]*sync.Mutex{},
	}
	for _, h := range o.insecure {
		c.insecure[strings.ToLower(h)] = true
	}
	base := &stallGuard{inner: o.transport, after: o.stall}
	c.rt = &pingCache{plain: c.plainHTTP, inner: &retryTransport{inner: &schemeGuard{inner: base, plain: c.plainHTTP}, retry: o.retry}}
	return c
}

// plainHTTP reports whether host (HOST or HOST:PORT) may be reached over
// plain HTTP: loopback, or named with WithInsecure.
func (c *Client) plainHTTP(hostport string) bool {
	hp := strings.ToLower(hostport)
	if c.insecure[hp] {
		return true
	}
	host := hp
	if h, _, err := net.SplitHostPort(hp); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if c.insecure[host] {
		return true
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseReference parses an IMAGE: host/repo:tag, host/repo@sha256:… or
// host/repo:tag@sha256:…. Errors are fault.Input.
func (c *Client) ParseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fault.Inputf("parse reference %q: %w", s, err)
	}
	if c.plainHTTP(ref.Context().RegistryStr()) {
		if ref, err = name.ParseReference(s, name.Insecure); err != nil {
			return nil, fault.Inputf("parse reference %q: %w", s, err)
		}
	}
	return ref, nil
}

// registry returns reg marked insecure exactly when plain HTTP is allowed for
// it, whatever the caller's name said, so ggcr's ping tries http only there.
func (c *Client) registry(reg name.Registry) name.Registry {
	var opts []name.Option
	if c.plainHTTP(reg.RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(reg.RegistryStr(), opts...)
	if err != nil {
		return reg
	}
	return r
}

// scheme is the scheme URLs are built with; ggcr's scheme transport corrects
// it to what the ping found (https first even for insecure registries).
func (c *Client) scheme(reg name.Registry) string {
	if c.plainHTTP(reg.RegistryStr()) {
		return "http"
	}
	return "https"
}

// httpClient returns the authenticated client for repo with the given
// actions; pull also lists repositories whose content is read along (mount
// sources). Clients are cached, so the token for a scope is fetched once and
// shared by all goroutines.
func (c *Client) httpClient(ctx context.Context, repo name.Repository, push bool, pull ...name.Repository) (*http.Client, error) {
	reg := c.registry(repo.Registry)
	action := transport.PullScope
	if push {
		action = transport.PushScope
	}
	scopes := []string{repo.Scope(action)}
	for _, p := range pull {
		scopes = append(scopes, p.Scope(transport.PullScope))
	}
	key := reg.RegistryStr() + " " + strings.Join(scopes, " ")

	c.mu.Lock()
	e, ok := c.transports[key]
	if !ok {
		e = &authEntry{ready: make(chan struct{})}
		c.transports[key] = e
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, fault.Wrap(fault.Operational, ctx.Err())
		}
		// A failure is shared by those who waited for it, not cached: the
		// next call tries afresh.
		return e.client, e.err
	}

	e.client, e.err = c.newHTTPClient(ctx, reg, repo, scopes)
	if e.err != nil {
		c.mu.Lock()
		delete(c.transports, key)
		c.mu.Unlock()
	}
	close(e.ready)
	return e.client, e.err
}

func (c *Client) newHTTPClient(ctx context.Context, reg name.Registry, repo name.Repository, scopes []string) (*http.Client, error) {
	auth, err := authn.Resolve(ctx, c.opts.keychain, repo)
	if err != nil {
		return nil, fault.Operationalf("credentials for %s: %w", reg.RegistryStr(), err)
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, c.rt, scopes)
	if err != nil {
		// Failing to ping the registry or to get a token is never the
		// input's fault: auth refused, or the registry unreachable.
		err = fmt.Errorf("connect to %s: %w", reg.RegistryStr(), err)
		if k := fault.KindOf(classify(err, reg.RegistryStr())); k == fault.Operational {
			return nil, classify(err, reg.RegistryStr())
		}
		return nil, fault.Wrap(fault.Operational, err)
	}
	return &http.Client{Transport: rt, CheckRedirect: checkRedirect(c.plainHTTP)}, nil
}

// checkRedirect follows at most 10 redirects, never from https to plain http
// (except to a host allowed plain HTTP), and never from a remote host to a
// loopback, private or link-local address (a registry pointing us at a
// metadata service).
func checkRedirect(plain func(string) bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("stopped after 10 redirects")
		}
		if req.URL.Scheme == "http" && !plain(req.URL.Host) {
			return fmt.Errorf("refusing redirect to plain http://%s", req.URL.Host)
		}
		from := via[0].URL.Hostname()
		to := req.URL.Hostname()
		if from == to {
			return nil
		}
		if ip := net.ParseIP(to); ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()) {
			if fip := net.ParseIP(from); fip == nil || !fip.IsLoopback() {
				return fmt.Errorf("refusing redirect from %s to private address %s", from, to)
			}
		}
		return nil
	}
}

// schemeGuard refuses plain-HTTP requests to hosts not allowed plain HTTP, so
// that neither ggcr's https→http ping fallback nor a redirect nor a token
// realm ever sends a request in clear text elsewhere.
type schemeGuard struct {
	inner http.RoundTripper
	plain func(hostport string) bool
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.plain(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to %s (not a loopback or insecure registry)", req.URL.Host)
	}
	return g.inner.RoundTrip(req)
}

// tagLock serialises this Client's writers of one tag (the referrers
// fallback index), so that concurrent writers in one process never race.
func (c *Client) tagLock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.tagLocks[key]
	if !ok {
		m = &sync.Mutex{}
		c.tagLocks[key] = m
	}
	return m
}

var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ",")

func isManifestType(mt string) bool {
	return slices.Contains(strings.Split(manifestAccept, ","), mt)
}
