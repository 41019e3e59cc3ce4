package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 10 * time.Second
	}
	if r.MaxElapsed <= 0 {
		r.MaxElapsed = 2 * time.Minute
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 200 * time.Millisecond
	}
	if r.BaseDelay > r.MaxDelay {
		r.BaseDelay = r.MaxDelay
	}
	return r
}

// delay is the wait before try attempt+1: exponential backoff with jitter,
// at least what Retry-After asked for, never more than MaxDelay.
func (r Retry) delay(attempt int, retryAfter time.Duration) time.Duration {
	d := r.BaseDelay << min(attempt-1, 30)
	if d <= 0 || d > r.MaxDelay {
		d = r.MaxDelay
	}
	// Equal jitter: half fixed, half random, so that workers that failed
	// together do not come back together.
	d = d/2 + rand.N(d/2+1)
	d = max(d, retryAfter)
	return min(d, r.MaxDelay)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryTransport retries requests that failed transiently: 429, 500, 502,
// 503, 504, connection resets and EOFs. Only requests whose body can be sent
// again (no body, or GetBody) are retried here; streamed uploads are retried
// by the operation that made them.
type retryTransport struct {
	inner http.RoundTripper
	retry Retry
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !replayable(req) {
		return t.inner.RoundTrip(req)
	}
	ctx := req.Context()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := t.inner.RoundTrip(r)
		again, retryAfter := retryable(resp, err)
		if !again || ctx.Err() != nil {
			return resp, err
		}
		wait := t.retry.delay(attempt, retryAfter)
		if attempt >= t.retry.Attempts || time.Since(start)+wait > t.retry.MaxElapsed {
			if err != nil {
				return nil, &retriedError{err: err, attempts: attempt}
			}
			resp.Header.Set(retriedHeader, strconv.Itoa(attempt))
			return resp, nil
		}
		if resp != nil {
			// Drain a little so the connection can be reused.
			_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
			resp.Body.Close()
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// retriedHeader marks, on a response handed back after the last try, that the
// transport already retried it, so that operations do not retry it again.
const retriedHeader = "X-Seal-Retried"

// retriedError is a transient error the transport gave up retrying.
type retriedError struct {
	err      error
	attempts int
}

func (e *retriedError) Error() string {
	return fmt.Sprintf("%v (after %d attempts)", e.err, e.attempts)
}
func (e *retriedError) Unwrap() error { return e.err }

// retryable reports whether a try is worth repeating, and how long the
// registry asked us to wait.
func retryable(resp *http.Response, err error) (bool, time.Duration) {
	if err != nil {
		return transientNetError(err), 0
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return false, 0
}

func transientNetError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		// A connection the server dropped while we were still streaming an
		// upload body surfaces as a write on a closed connection.
		errors.Is(err, net.ErrClosed)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// retryOp runs op until it succeeds, fails for good, or the retry budget is
// spent. It covers what the transport cannot retry: a body that broke off
// while being read, and streamed uploads. op is told the try number.
func (c *Client) retryOp(ctx context.Context, op func(attempt int) error) error {
	r := c.opts.retry
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil || !opRetryable(err) || ctx.Err() != nil {
			return err
		}
		wait := r.delay(attempt, 0)
		if attempt >= r.Attempts || time.Since(start)+wait > r.MaxElapsed {
			return err
		}
		if serr := sleep(ctx, wait); serr != nil {
			return err
		}
	}
}

// opRetryable: transient failures that the transport has not already
// retried.
func opRetryable(err error) bool {
	var re *retriedError
	if errors.As(err, &re) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.transient && !se.retried
	}
	return transientNetError(err)
}
