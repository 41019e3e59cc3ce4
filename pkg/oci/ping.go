package oci

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// pingCache answers a registry's `GET /v2/` ping from the first answer the
// registry gave. go-containerregistry pings before authenticating every
// repository and scope, but the answer (200, or 401 with the registry's
// challenge) is the registry's, not a repository's: without this a batch over
// a hundred repositories costs a hundred pings, or two hundred for a plain
// HTTP registry, whose https attempt fails first. A failed https attempt is
// remembered only for hosts allowed plain HTTP, where ggcr goes on to http.
type pingCache struct {
	inner http.RoundTripper
	plain func(hostport string) bool

	mu       sync.Mutex
	seen     map[string]*cachedPing   // by scheme://host
	inflight map[string]chan struct{} // pings under way, for the workers that ask meanwhile
}

type cachedPing struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// maxPingBody bounds what is kept of a ping's body (registries send "{}" or a
// short error).
const maxPingBody = 64 << 10

func (p *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Path != "/v2/" || req.URL.RawQuery != "" {
		return p.inner.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	c, err := p.lookup(req, key)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if c.err != nil {
			return nil, c.err
		}
		return &http.Response{
			Status: http.StatusText(c.status), StatusCode: c.status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: c.header.Clone(), Body: io.NopCloser(bytes.NewReader(c.body)),
			ContentLength: int64(len(c.body)), Request: req,
		}, nil
	}
	defer p.done(key)
	resp, err := p.inner.RoundTrip(req)
	if err != nil {
		if req.URL.Scheme == "https" && p.plain(req.URL.Host) && req.Context().Err() == nil {
			p.remember(key, &cachedPing{err: err})
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return resp, nil // a passing failure: ask again next time
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPingBody))
	resp.Body.Close()
	if err != nil {
		// A cut-off answer is passed on as it came (the status is what a
		// ping reads), but not remembered.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return resp, nil
	}
	p.remember(key, &cachedPing{status: resp.StatusCode, header: resp.Header.Clone(), body: body})
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// lookup returns the remembered answer for key, waiting for a ping already
// under way (the workers of a batch start together). With no answer it
// returns nil, and the caller pings and must call done(key).
func (p *pingCache) lookup(req *http.Request, key string) (*cachedPing, error) {
	for {
		p.mu.Lock()
		if c := p.seen[key]; c != nil {
			p.mu.Unlock()
			return c, nil
		}
		wait, busy := p.inflight[key]
		if !busy {
			if p.inflight == nil {
				p.inflight = map[string]chan struct{}{}
			}
			p.inflight[key] = make(chan struct{})
			p.mu.Unlock()
			return nil, nil
		}
		p.mu.Unlock()
		select {
		case <-wait:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
}

func (p *pingCache) done(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.inflight[key])
	delete(p.inflight, key)
}

func (p *pingCache) remember(key string, c *cachedPing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]*cachedPing{}
	}
	if p.seen[key] == nil {
		p.seen[key] = c
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
