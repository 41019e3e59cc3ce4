package oci

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// Manifest is a manifest as the registry served it, checked against its
// digest and the size cap.
type Manifest struct {
	Descriptor v1.Descriptor // MediaType from the body's mediaType field or Content-Type
	Raw        []byte
}

// IsIndex reports whether m is an image index (OCI or Docker manifest list).
func (m *Manifest) IsIndex() bool { return m.Descriptor.MediaType.IsIndex() }

// Index parses m as an image index.
func (m *Manifest) Index() (*v1.IndexManifest, error) {
	if !m.IsIndex() {
		return nil, fault.Inputf("manifest %s is %s, not an index", m.Descriptor.Digest, m.Descriptor.MediaType)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(m.Raw))
	if err != nil {
		return nil, fault.Inputf("parse index %s: %w", m.Descriptor.Digest, err)
	}
	return im, nil
}

// Image parses m as an image (or artifact) manifest.
func (m *Manifest) Image() (*v1.Manifest, error) {
	if m.IsIndex() {
		return nil, fault.Inputf("manifest %s is an index (%s), not an image manifest", m.Descriptor.Digest, m.Descriptor.MediaType)
	}
	im, err := v1.ParseManifest(bytes.NewReader(m.Raw))
	if err != nil {
		return nil, fault.Inputf("parse manifest %s: %w", m.Descriptor.Digest, err)
	}
	return im, nil
}

// endpoint is the URL of /v2/<repo>/<kind>/<id>.
func (c *Client) endpoint(repo name.Repository, kind, id string) string {
	u := url.URL{
		Scheme: c.scheme(repo.Registry),
		Host:   repo.RegistryStr(),
		Path:   "/v2/" + repo.RepositoryStr() + "/" + kind + "/" + id,
	}
	return u.String()
}

// Resolve turns a reference into its manifest descriptor (digest, media type,
// size) with one HEAD request, or a GET when the registry's HEAD does not
// give the digest. host/repo:tag@sha256:… resolves the digest; the tag is
// not consulted.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (v1.Descriptor, error) {
	d, err := c.resolve(ctx, ref)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return d, nil
}

func (c *Client) resolve(ctx context.Context, ref name.Reference) (v1.Descriptor, error) {
	host := ref.Context().RegistryStr()
	hc, err := c.httpClient(ctx, ref.Context(), false)
	if err != nil {
		return v1.Descriptor{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.endpoint(ref.Context(), "manifests", ref.Identifier()), nil)
	if err != nil {
		return v1.Descriptor{}, fault.Wrap(fault.Input, err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := do(hc, req)
	if err != nil {
		return v1.Descriptor{}, classify(err, host)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		d, ok := headDescriptor(resp)
		if !ok {
			break // no usable digest: ask with GET
		}
		if dg, isDigest := ref.(name.Digest); isDigest && d.Digest.String() != dg.DigestStr() {
			return v1.Descriptor{}, fault.Inputf("registry answered digest %s for %s", d.Digest, dg.DigestStr())
		}
		if d.Size > c.opts.limits.Manifest {
			return v1.Descriptor{}, fault.Inputf("manifest %s is %d bytes, above the %d-byte limit", d.Digest, d.Size, c.opts.limits.Manifest)
		}
		return d, nil
	case resp.StatusCode == http.StatusNotFound,
		resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden,
		resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests:
		return v1.Descriptor{}, classify(checkStatus(resp), host)
	}
	m, err := c.fetchManifest(ctx, ref)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return m.Descriptor, nil
}

// headDescriptor reads a manifest descriptor from a HEAD response, if the
// registry gave all of it.
func headDescriptor(resp *http.Response) (v1.Descriptor, bool) {
	h, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return v1.Descriptor{}, false
	}
	mt := mediaTypeOf(resp.Header.Get("Content-Type"))
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil || size <= 0 || !isManifestType(mt) {
		return v1.Descriptor{}, false
	}
	return v1.Descriptor{MediaType: types.MediaType(mt), Size: size, Digest: h}, true
}

func mediaTypeOf(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// Manifest fetches a manifest (by tag or digest) under the size cap. A
// manifest fetched by digest must hash to it; one fetched by tag must hash to
// the digest the registry announced, if it announced one.
func (c *Client) Manifest(ctx context.Context, ref name.Reference) (*Manifest, error) {
	m, err := c.fetchManifest(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s: %w", ref, err)
	}
	return m, nil
}

func (c *Client) fetchManifest(ctx context.Context, ref name.Reference) (*Manifest, error) {
	return c.fetchManifestEntries(ctx, ref, c.opts.limits.IndexEntries)
}

// fetchManifestEntries is fetchManifest refusing indexes that list more than
// entries manifests.
func (c *Client) fetchManifestEntries(ctx context.Context, ref name.Reference, entries int) (*Manifest, error) {
	host := ref.Context().RegistryStr()
	hc, err := c.httpClient(ctx, ref.Context(), false)
	if err != nil {
		return nil, err
	}
	var m *Manifest
	err = c.retryOp(ctx, func(int) error {
		var err error
		m, err = c.getManifest(ctx, hc, ref, entries)
		return err
	})
	return m, classify(err, host)
}

func (c *Client) getManifest(ctx context.Context, hc *http.Client, ref name.Reference, entries int) (*Manifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(ref.Context(), "manifests", ref.Identifier()), nil)
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := do(hc, req)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(resp, http.StatusOK); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := c.opts.limits.Manifest
	if resp.ContentLength > limit {
		return nil, fault.Inputf("manifest is %d bytes, above the %d-byte limit", resp.ContentLength, limit)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if int64(len(raw)) > limit {
		return nil, fault.Inputf("manifest is above the %d-byte limit", limit)
	}
	if resp.ContentLength >= 0 && int64(len(raw)) != resp.ContentLength {
		return nil, fmt.Errorf("read manifest: %w", io.ErrUnexpectedEOF)
	}

	algo := "sha256"
	dg, byDigest := ref.(name.Digest)
	var want v1.Hash
	if byDigest {
		if want, err = v1.NewHash(dg.DigestStr()); err != nil {
			return nil, fault.Inputf("digest %s: %w", dg.DigestStr(), err)
		}
		algo = want.Algorithm
	}
	got, err := digestOf(algo, raw)
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	if byDigest && got != want {
		return nil, fault.Inputf("registry served content with digest %s for %s", got, want)
	}
	if h, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err == nil && h.Algorithm == got.Algorithm && h != got {
		return nil, fault.Inputf("registry announced digest %s but served content with digest %s", h, got)
	}
	mt, n, err := manifestShape(raw, mediaTypeOf(resp.Header.Get("Content-Type")))
	if err != nil {
		return nil, fault.Inputf("manifest %s: %w", got, err)
	}
	if types.MediaType(mt).IsIndex() && n > entries {
		return nil, fault.Inputf("index %s lists %d manifests, more than the %d allowed", got, n, entries)
	}
	return &Manifest{
		Descriptor: v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(len(raw)), Digest: got},
		Raw:        raw,
	}, nil
}

func digestOf(algo string, data []byte) (v1.Hash, error) {
	h, err := v1.Hasher(algo)
	if err != nil {
		return v1.Hash{}, err
	}
	h.Write(data)
	return v1.Hash{Algorithm: algo, Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// manifestMediaType is the media type of a manifest body: its mediaType
// field, else the Content-Type it came with, else what its shape says (OCI
// allows the field to be absent). Schema 1 and non-JSON bodies are refused.
func manifestMediaType(raw []byte, contentType string) (string, error) {
	mt, _, err := manifestShape(raw, contentType)
	return mt, err
}

// manifestShape is manifestMediaType and, from the same reading, how many
// manifests the body lists (an index's entries, counted without keeping
// them).
func manifestShape(raw []byte, contentType string) (mediaType string, entries int, err error) {
	var doc struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     *[]struct{}     `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", 0, fmt.Errorf("unparsable manifest: %w", err)
	}
	if doc.Manifests != nil {
		entries = len(*doc.Manifests)
	}
	if doc.SchemaVersion != 2 {
		return "", 0, fmt.Errorf("unsupported manifest schemaVersion %d", doc.SchemaVersion)
	}
	switch {
	case doc.MediaType != "":
		if !isManifestType(doc.MediaType) {
			return "", 0, fmt.Errorf("unsupported manifest media type %q", doc.MediaType)
		}
		return doc.MediaType, entries, nil
	case isManifestType(contentType):
		return contentType, entries, nil
	case doc.Manifests != nil:
		return string(types.OCIImageIndex), entries, nil
	case doc.Config != nil:
		return string(types.OCIManifestSchema1), entries, nil
	}
	return "", 0, errors.New("neither an image manifest nor an index")
}

// PushManifest pushes raw by its digest and returns its descriptor. Tag it
// separately, last.
func (c *Client) PushManifest(ctx context.Context, repo name.Repository, raw []byte, mediaType string) (v1.Descriptor, error) {
	d, err := c.checkManifest(raw, mediaType)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("push manifest to %s: %w", repo, err)
	}
	if err := c.putManifest(ctx, repo, d.Digest.String(), raw, mediaType); err != nil {
		return v1.Descriptor{}, fmt.Errorf("push manifest %s@%s: %w", repo, d.Digest, err)
	}
	return d, nil
}

// Tag points tag at raw (pushing raw again, which is how the distribution
// API tags).
func (c *Client) Tag(ctx context.Context, tag name.Tag, raw []byte, mediaType string) error {
	d, err := c.checkManifest(raw, mediaType)
	if err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	if err := c.putManifest(ctx, tag.Context(), tag.TagStr(), raw, mediaType); err != nil {
		return fmt.Errorf("tag %s as %s: %w", d.Digest, tag, err)
	}
	return nil
}

func (c *Client) checkManifest(raw []byte, mediaType string) (v1.Descriptor, error) {
	if int64(len(raw)) > c.opts.limits.Manifest {
		return v1.Descriptor{}, fault.Inputf("manifest is %d bytes, above the %d-byte limit", len(raw), c.opts.limits.Manifest)
	}
	if !isManifestType(mediaType) {
		return v1.Descriptor{}, fault.Inputf("unsupported manifest media type %q", mediaType)
	}
	mt, err := manifestMediaType(raw, mediaType)
	if err != nil {
		return v1.Descriptor{}, fault.Wrap(fault.Input, err)
	}
	if mt != mediaType {
		return v1.Descriptor{}, fault.Inputf("manifest says mediaType %q, pushed as %q", mt, mediaType)
	}
	h, err := digestOf("sha256", raw)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: types.MediaType(mediaType), Size: int64(len(raw)), Digest: h}, nil
}

func (c *Client) putManifest(ctx context.Context, repo name.Repository, id string, raw []byte, mediaType string) error {
	host := repo.RegistryStr()
	hc, err := c.httpClient(ctx, repo, true)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.endpoint(repo, "manifests", id), bytes.NewReader(raw))
	if err != nil {
		return fault.Wrap(fault.Input, err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := do(hc, req)
	if err != nil {
		return classify(err, host)
	}
	if err := checkStatus(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return classify(err, host)
	}
	resp.Body.Close()
	if h, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err == nil && h.Algorithm == "sha256" {
		if want, _ := digestOf("sha256", raw); h != want {
			return fault.Operationalf("registry stored digest %s for a manifest with digest %s", h, want)
		}
	}
	return nil
}

// hasManifest reports whether repo holds the manifest d.
func (c *Client) hasManifest(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	return c.exists(ctx, repo, "manifests", d, manifestAccept)
}

// exists asks with HEAD whether repo holds the blob or manifest (kind) h:
// 200 yes, 404 no, anything else an error.
func (c *Client) exists(ctx context.Context, repo name.Repository, kind string, h v1.Hash, accept string) (bool, error) {
	hc, err := c.httpClient(ctx, repo, false)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.endpoint(repo, kind, h.String()), nil)
	if err != nil {
		return false, fault.Wrap(fault.Input, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := do(hc, req)
	if err != nil {
		return false, classify(err, repo.RegistryStr())
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, classify(checkStatus(resp), repo.RegistryStr())
}
