package oci

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

// DefaultStallTimeout is how long a response body may send nothing before
// it is cut: as long as the transport waits for response headers.
const DefaultStallTimeout = 2 * time.Minute

// stallGuard cuts response bodies that stop sending. The transport bounds
// the wait for headers; nothing bounds a body that sends half of a manifest
// or a layer and then holds the connection open, which would hold a command
// until its context ends (for a CLI: forever).
type stallGuard struct {
	inner http.RoundTripper
	after time.Duration
}

func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.inner.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	resp.Body = newStallReader(resp.Body, g.after)
	return resp, nil
}

// stallReader closes its body when no byte has come for after, and then
// reports the stall as an operational failure and an unexpected end of the
// body: transient, so that a retry of the request may cure it.
type stallReader struct {
	rc      io.ReadCloser
	after   time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func newStallReader(rc io.ReadCloser, after time.Duration) *stallReader {
	s := &stallReader{rc: rc, after: after}
	s.timer = time.AfterFunc(after, func() {
		s.stalled.Store(true)
		rc.Close()
	})
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.after)
	}
	if err != nil {
		s.timer.Stop()
		if s.stalled.Load() {
			return n, fault.Wrap(fault.Operational, fmt.Errorf("the registry sent nothing for %v: %w", s.after, io.ErrUnexpectedEOF))
		}
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	return s.rc.Close()
}
