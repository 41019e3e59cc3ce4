package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// requestTimeout bounds each download; metadata and the trusted root are
// small, so a mirror slower than this is as good as down.
const requestTimeout = 30 * time.Second

// fetcher is the go-tuf Fetcher seal uses: bound to the run's context,
// capped at the length go-tuf allows for each file, and remembering the
// metadata documents it downloaded so an expiry can be dated.
type fetcher struct {
	ctx      context.Context
	client   *http.Client
	metaBase string // mirror + "/": metadata lives right under it
	offline  bool
	seen     map[string][]byte // role → last document downloaded
}

func newFetcher(ctx context.Context, mirror string, offline bool) *fetcher {
	return &fetcher{
		ctx:      ctx,
		client:   &http.Client{Timeout: requestTimeout},
		metaBase: mirror + "/",
		offline:  offline,
		seen:     map[string][]byte{},
	}
}

// unavailableError is a mirror that could not be reached at all.
type unavailableError struct {
	url string
	err error
}

func (e *unavailableError) Error() string { return fmt.Sprintf("GET %s: %v", e.url, e.err) }
func (e *unavailableError) Unwrap() error { return e.err }

// mirrorUnavailable tells a mirror that is down or answers with an HTTP
// error from one that serves metadata failing TUF's checks: only the first
// may fall back to the cache.
func mirrorUnavailable(err error) bool {
	return errors.As(err, new(*unavailableError)) || errors.As(err, new(*metadata.ErrDownloadHTTP))
}

// DownloadFile implements go-tuf's fetcher.Fetcher.
func (f *fetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	if f.offline {
		// go-tuf's local mode should never ask; refusing keeps "offline" true
		// whatever it does.
		return nil, fmt.Errorf("offline: not fetching %s", u)
	}
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "seal")
	resp, err := f.client.Do(req)
	if err != nil {
		if ctxErr := f.ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &unavailableError{url: u, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: u}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: %d bytes, more than the %d allowed", u, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		if ctxErr := f.ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &unavailableError{url: u, err: err}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than the %d bytes allowed", u, maxLength)}
	}
	if name, ok := strings.CutPrefix(u, f.metaBase); ok && !strings.Contains(name, "/") {
		f.seen[metadataRole(name)] = data
	}
	return data, nil
}

// metadataRole maps "timestamp.json" and "3.snapshot.json" to their role.
func metadataRole(name string) string {
	name = strings.TrimSuffix(name, ".json")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}
