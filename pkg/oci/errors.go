package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/seal-dev/seal/pkg/fault"
)

// statusError is a registry's answer with an unexpected status. It names the
// request by method and path only: queries may carry upload state, and
// headers (Authorization) are never part of an error.
type statusError struct {
	method, path string
	status       int
	codes        []string // OCI error codes from the body (MANIFEST_UNKNOWN, …)
	message      string
	transient    bool // 429/5xx
	retried      bool // the transport already retried it
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, http.StatusText(e.status))
	if len(e.codes) > 0 {
		s += " (" + strings.Join(e.codes, ", ")
		if e.message != "" {
			s += ": " + e.message
		}
		s += ")"
	}
	return s
}

func (e *statusError) notFound() bool {
	if e.status == http.StatusNotFound {
		return true
	}
	for _, c := range e.codes {
		switch c {
		case "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN":
			return true
		}
	}
	return false
}

func (e *statusError) has(code string) bool {
	for _, c := range e.codes {
		if c == code {
			return true
		}
	}
	return false
}

// checkStatus returns nil when resp has one of the wanted statuses, else a
// statusError (and closes the body).
func checkStatus(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	defer resp.Body.Close()
	e := &statusError{
		status:  resp.StatusCode,
		retried: resp.Header.Get(retriedHeader) != "",
	}
	if req := resp.Request; req != nil {
		e.method, e.path = req.Method, req.URL.Path
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		e.transient = true
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil {
		for _, d := range doc.Errors {
			e.codes = append(e.codes, d.Code)
			if e.message == "" {
				e.message = truncate(d.Message, 200)
			}
		}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// classify gives err its fault kind. host is the registry concerned (for
// "auth refused for HOST").
func classify(err error, host string) error {
	if err == nil {
		return nil
	}
	if fault.KindOf(err) != fault.Unknown {
		return err
	}
	status := 0
	var se *statusError
	var te *transport.Error
	switch {
	case errors.As(err, &se):
		if se.notFound() {
			return fault.Wrap(fault.Input, fmt.Errorf("not found: %w", err))
		}
		status = se.status
		if se.has("UNAUTHORIZED") || se.has("DENIED") {
			status = http.StatusUnauthorized
		}
	case errors.As(err, &te):
		status = te.StatusCode
		for _, d := range te.Errors {
			if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
				status = http.StatusUnauthorized
			}
		}
		if status == http.StatusNotFound {
			return fault.Wrap(fault.Input, fmt.Errorf("not found: %w", err))
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fault.Wrap(fault.Operational, err)
	default:
		return fault.Wrap(fault.Operational, err)
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fault.Wrap(fault.Operational, fmt.Errorf("auth refused for %s: %w", host, err))
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		return fault.Wrap(fault.Operational, err)
	default:
		return fault.Wrap(fault.Input, err)
	}
}

// redactURL drops the query (upload state) and any user info.
func redactURL(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery = ""
	v.ForceQuery = false
	v.Fragment = ""
	return v.String()
}

// do sends one request. Transport errors come back naming the method and the
// URL without its query; statuses are left to the caller.
func do(hc *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), err)
	}
	return resp, nil
}
