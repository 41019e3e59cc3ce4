package oci

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// Blob opens the blob d of repo. The reader checks size and digest as it
// goes: reading past d.Size, or reaching the end with other bytes than d's,
// is an error, never a clean EOF.
func (c *Client) Blob(ctx context.Context, repo name.Repository, d v1.Descriptor) (io.ReadCloser, error) {
	rc, err := c.openBlob(ctx, repo, d)
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s@%s: %w", repo, d.Digest, err)
	}
	return rc, nil
}

func (c *Client) openBlob(ctx context.Context, repo name.Repository, d v1.Descriptor) (*verifyingReader, error) {
	if d.Size < 0 {
		return nil, fault.Inputf("negative size %d", d.Size)
	}
	if c.opts.limits.Blob > 0 && d.Size > c.opts.limits.Blob {
		return nil, fault.Inputf("blob is %d bytes, above the %d-byte limit", d.Size, c.opts.limits.Blob)
	}
	h, err := v1.Hasher(d.Digest.Algorithm)
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	hc, err := c.httpClient(ctx, repo, false)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(repo, "blobs", d.Digest.String()), nil)
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	resp, err := do(hc, req)
	if err != nil {
		return nil, classify(err, repo.RegistryStr())
	}
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, classify(err, repo.RegistryStr())
	}
	if resp.ContentLength >= 0 && resp.ContentLength != d.Size {
		resp.Body.Close()
		return nil, fault.Inputf("registry announced %d bytes, the descriptor says %d", resp.ContentLength, d.Size)
	}
	return &verifyingReader{rc: resp.Body, want: d, h: h}, nil
}

// verifyingReader passes a blob through while hashing it, and turns the end
// of the stream into an error unless size and digest match.
type verifyingReader struct {
	rc      io.ReadCloser
	want    v1.Descriptor
	h       hash.Hash
	n       int64
	checked bool

	mu  sync.Mutex // err is read by the uploader while the transport may still read
	err error
}

func (v *verifyingReader) setErr(err error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
	return err
}

// failure is the error the stream ended with, other than io.EOF.
func (v *verifyingReader) failure() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if errors.Is(v.err, io.EOF) {
		return nil
	}
	return v.err
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	v.mu.Lock()
	err := v.err
	v.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Ask for one byte more than is left, so an oversized body shows.
	if left := v.want.Size - v.n + 1; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := v.rc.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.n > v.want.Size {
		return 0, v.setErr(fault.Inputf("blob %s: registry served more than %d bytes", v.want.Digest, v.want.Size))
	}
	if v.n == v.want.Size && !v.checked {
		v.checked = true
		got := v1.Hash{Algorithm: v.want.Digest.Algorithm, Hex: hex.EncodeToString(v.h.Sum(nil))}
		if got != v.want.Digest {
			// Withhold the last bytes: whoever reads (an upload) never
			// sees the complete wrong content.
			return 0, v.setErr(fault.Inputf("blob %s: registry served content with digest %s", v.want.Digest, got))
		}
	}
	switch {
	case errors.Is(err, io.EOF) && v.n != v.want.Size:
		return n, v.setErr(fmt.Errorf("blob %s: %d of %d bytes: %w", v.want.Digest, v.n, v.want.Size, io.ErrUnexpectedEOF))
	case err != nil:
		v.setErr(err)
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// BlobBytes reads the blob d, refusing blobs larger than max (callers cap
// small documents: configs, attestations, signatures).
func (c *Client) BlobBytes(ctx context.Context, repo name.Repository, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, fault.Inputf("fetch blob %s@%s: %d bytes, above the %d-byte limit", repo, d.Digest, d.Size, max)
	}
	var data []byte
	err := c.retryOp(ctx, func(int) error {
		rc, err := c.openBlob(ctx, repo, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(rc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s@%s: %w", repo, d.Digest, classify(err, repo.RegistryStr()))
	}
	return data, nil
}

// HasBlob reports whether repo holds the blob h.
func (c *Client) HasBlob(ctx context.Context, repo name.Repository, h v1.Hash) (bool, error) {
	ok, err := c.hasBlob(ctx, repo, h)
	if err != nil {
		return false, fmt.Errorf("check blob %s@%s: %w", repo, h, err)
	}
	return ok, nil
}

func (c *Client) hasBlob(ctx context.Context, repo name.Repository, h v1.Hash) (bool, error) {
	return c.exists(ctx, repo, "blobs", h, "")
}

// PushBlob uploads data as the blob d, unless repo has it already. data must
// match d.
func (c *Client) PushBlob(ctx context.Context, repo name.Repository, d v1.Descriptor, data []byte) error {
	if err := c.pushBlob(ctx, repo, d, data); err != nil {
		return fmt.Errorf("push blob %s@%s: %w", repo, d.Digest, err)
	}
	return nil
}

func (c *Client) pushBlob(ctx context.Context, repo name.Repository, d v1.Descriptor, data []byte) error {
	if int64(len(data)) != d.Size {
		return fault.Inputf("%d bytes given, the descriptor says %d", len(data), d.Size)
	}
	if got, err := digestOf(d.Digest.Algorithm, data); err != nil {
		return fault.Wrap(fault.Input, err)
	} else if got != d.Digest {
		return fault.Inputf("content has digest %s", got)
	}
	if ok, err := c.hasBlob(ctx, repo, d.Digest); err != nil || ok {
		return err
	}
	hc, err := c.httpClient(ctx, repo, true)
	if err != nil {
		return err
	}
	err = c.retryOp(ctx, func(attempt int) error {
		if attempt > 1 {
			// The last try may have landed although its answer was lost.
			if ok, err := c.hasBlob(ctx, repo, d.Digest); err != nil || ok {
				return err
			}
		}
		loc, err := c.startUpload(ctx, hc, repo, d.Digest, nil)
		if err != nil || loc == nil {
			return err
		}
		return c.landed(ctx, repo, d, c.finishUpload(ctx, hc, loc, d, bytes.NewReader(data)))
	})
	return classify(err, repo.RegistryStr())
}

// startUpload opens an upload session in repo. With from, it first asks the
// registry to mount d from that repository; a nil location means the mount
// happened and there is nothing to upload.
func (c *Client) startUpload(ctx context.Context, hc *http.Client, repo name.Repository, d v1.Hash, from *name.Repository) (*url.URL, error) {
	u, err := url.Parse(c.endpoint(repo, "blobs", "uploads/"))
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	if from != nil {
		u.RawQuery = url.Values{"mount": {d.String()}, "from": {from.RepositoryStr()}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	resp, err := do(hc, req)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(resp, http.StatusCreated, http.StatusAccepted); err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated && from != nil {
		return nil, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fault.Operationalf("POST %s: upload session without a Location: %w", u.Path, err)
	}
	return loc, nil
}

// finishUpload sends the whole blob to the session at loc in one PUT.
func (c *Client) finishUpload(ctx context.Context, hc *http.Client, loc *url.URL, d v1.Descriptor, body io.Reader) error {
	u := *loc
	q := u.Query()
	q.Set("digest", d.Digest.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return fault.Wrap(fault.Input, err)
	}
	req.ContentLength = d.Size
	if d.Size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := do(hc, req)
	if err != nil {
		return err
	}
	if err := checkStatus(resp, http.StatusCreated, http.StatusNoContent, http.StatusOK); err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// landed turns a failed upload into a success when the blob is in repo all
// the same: the registry stored it and the answer was lost, and a replayed
// PUT to the finished session was refused.
func (c *Client) landed(ctx context.Context, repo name.Repository, d v1.Descriptor, err error) error {
	if err == nil {
		return nil
	}
	if ok, herr := c.hasBlob(ctx, repo, d.Digest); herr == nil && ok {
		return nil
	}
	return err
}

// CopyBlob makes dst hold the blob d of src: nothing when dst has it, a
// cross-repository mount on the same registry, else a stream from src into
// dst (constant memory; the digest is checked on the way).
func (c *Client) CopyBlob(ctx context.Context, src, dst name.Repository, d v1.Descriptor) error {
	if err := c.copyBlob(ctx, src, dst, d); err != nil {
		return fmt.Errorf("copy blob %s@%s to %s: %w", src, d.Digest, dst, err)
	}
	return nil
}

func (c *Client) copyBlob(ctx context.Context, src, dst name.Repository, d v1.Descriptor) error {
	if ok, err := c.hasBlob(ctx, dst, d.Digest); err != nil || ok {
		return err
	}
	sameRegistry := src.RegistryStr() == dst.RegistryStr()
	var from *name.Repository
	var hc *http.Client
	var err error
	if sameRegistry && src.RepositoryStr() != dst.RepositoryStr() {
		from = &src
		hc, err = c.httpClient(ctx, dst, true, src)
	} else {
		hc, err = c.httpClient(ctx, dst, true)
	}
	if err != nil {
		return err
	}
	err = c.retryOp(ctx, func(attempt int) error {
		if attempt > 1 {
			if ok, err := c.hasBlob(ctx, dst, d.Digest); err != nil || ok {
				return err
			}
		}
		var loc *url.URL
		var err error
		if from != nil {
			if loc, err = c.startUpload(ctx, hc, dst, d.Digest, from); err != nil || loc == nil {
				return err
			}
		}
		// The source is opened before an upload session is, so that a
		// missing source leaves no session behind.
		rc, err := c.openBlob(ctx, src, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		if loc == nil {
			if loc, err = c.startUpload(ctx, hc, dst, d.Digest, nil); err != nil {
				return err
			}
		}
		err = c.finishUpload(ctx, hc, loc, d, rc)
		if ferr := rc.failure(); ferr != nil {
			// The source's failure explains the upload's.
			return ferr
		}
		return c.landed(ctx, dst, d, err)
	})
	return classify(err, dst.RegistryStr())
}
