package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

const (
	// emptyDigest is the subject ReferrersAPI asks about when it has no
	// subject of its own: an answer about any digest tells whether the API
	// is there.
	emptyDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// maxReferrerPages bounds how many Link rel="next" pages are followed.
	maxReferrerPages = 64
	// fallbackAttempts bounds the read-merge-write rounds of PushReferrer
	// on a registry without the referrers API.
	fallbackAttempts = 10
)

type referrersAnswer int

const (
	answerAPI     referrersAnswer = iota // the registry has the referrers API
	answerNoAPI                          // it has not: use the fallback tag
	answerUnknown                        // the repository does not exist; nothing to learn
)

// FallbackTag is the tag that holds the referrers of subject on registries
// without the referrers API (OCI distribution spec 1.1): "<alg>-<hex>".
func FallbackTag(subject v1.Hash) string {
	t := subject.Algorithm + "-" + subject.Hex
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// ReferrersAPI reports whether repo's registry has the OCI 1.1 referrers API,
// by asking it; the answer is cached per registry. A repository that does
// not exist yet gives no answer (false, not cached).
func (c *Client) ReferrersAPI(ctx context.Context, repo name.Repository) (bool, error) {
	api, known, done, err := c.awaitReferrersAPI(ctx, repo)
	if err != nil || known {
		return api, err
	}
	defer done()
	h, _ := v1.NewHash(emptyDigest)
	_, ans, err := c.askReferrers(ctx, repo, h)
	if err != nil {
		return false, fmt.Errorf("referrers API of %s: %w", repo.RegistryStr(), err)
	}
	return ans == answerAPI, nil
}

// awaitReferrersAPI returns the cached answer for repo's registry. Without
// one, the first caller is told to ask (known false) and must call done when
// it has learnt the answer or given up; callers meanwhile wait for it rather
// than send a probe each, which on a registry without the API is a 404 per
// worker at the start of every batch. When the asker learns nothing (its
// repository does not exist yet), the next waiter asks in turn.
func (c *Client) awaitReferrersAPI(ctx context.Context, repo name.Repository) (api, known bool, done func(), err error) {
	reg := repo.RegistryStr()
	for {
		c.mu.Lock()
		if api, known := c.referrers[reg]; known {
			c.mu.Unlock()
			return api, true, nil, nil
		}
		wait, busy := c.probing[reg]
		if !busy {
			ch := make(chan struct{})
			c.probing[reg] = ch
			c.mu.Unlock()
			return false, false, func() {
				c.mu.Lock()
				delete(c.probing, reg)
				c.mu.Unlock()
				close(ch)
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false, false, nil, fault.Wrap(fault.Operational, ctx.Err())
		}
	}
}

func (c *Client) learnReferrersAPI(repo name.Repository, ans referrersAnswer) {
	if ans == answerUnknown {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.referrers[repo.RegistryStr()] = ans == answerAPI
}

// askReferrers asks GET /v2/<repo>/referrers/<subject>, and remembers what
// the answer says of the registry's referrers API. Only a 200 with an OCI
// index is taken as the API; the OCI-Subject header of pushes is not trusted
// for this, as some registries and proxies send it without serving the API.
func (c *Client) askReferrers(ctx context.Context, repo name.Repository, subject v1.Hash) ([]v1.Descriptor, referrersAnswer, error) {
	hc, err := c.httpClient(ctx, repo, false)
	if err != nil {
		return nil, 0, err
	}
	next := c.endpoint(repo, "referrers", subject.String())
	var all []v1.Descriptor
	for page := 0; next != ""; page++ {
		if page == maxReferrerPages {
			return nil, 0, fault.Inputf("referrers of %s: more than %d pages", subject, maxReferrerPages)
		}
		var descs []v1.Descriptor
		var ans referrersAnswer
		var link string
		err := c.retryOp(ctx, func(int) error {
			var err error
			descs, ans, link, err = c.referrersPage(ctx, hc, next)
			return err
		})
		if err != nil {
			return nil, 0, classify(err, repo.RegistryStr())
		}
		if ans != answerAPI {
			c.learnReferrersAPI(repo, ans)
			return nil, ans, nil
		}
		all = append(all, descs...)
		if len(all) > c.opts.limits.Referrers {
			return nil, 0, fault.Inputf("more than the %d referrers allowed", c.opts.limits.Referrers)
		}
		next = link
	}
	c.learnReferrersAPI(repo, answerAPI)
	return all, answerAPI, nil
}

func (c *Client) referrersPage(ctx context.Context, hc *http.Client, u string) ([]v1.Descriptor, referrersAnswer, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, "", fault.Wrap(fault.Input, err)
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := do(hc, req)
	if err != nil {
		return nil, 0, "", err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, 0, "", checkStatus(resp)
	default:
		err := checkStatus(resp).(*statusError)
		if err.status == http.StatusNotFound && err.has("NAME_UNKNOWN") {
			return nil, answerUnknown, "", nil
		}
		return nil, answerNoAPI, "", nil
	}
	defer resp.Body.Close()
	if mediaTypeOf(resp.Header.Get("Content-Type")) != string(types.OCIImageIndex) {
		return nil, answerNoAPI, "", nil
	}
	limit := c.opts.limits.Manifest
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, "", fmt.Errorf("read referrers: %w", err)
	}
	if int64(len(raw)) > limit {
		return nil, 0, "", fault.Inputf("referrers page is above the %d-byte limit", limit)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, 0, "", fault.Inputf("unparsable referrers index: %w", err)
	}
	next, err := nextLink(resp)
	if err != nil {
		return nil, 0, "", err
	}
	return idx.Manifests, answerAPI, next, nil
}

// nextLink is the rel="next" Link of a paginated answer, resolved against the
// request and kept on the same host.
func nextLink(resp *http.Response) (string, error) {
	for _, l := range resp.Header.Values("Link") {
		for _, part := range strings.Split(l, ",") {
			target, params, ok := strings.Cut(part, ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			target = strings.Trim(strings.TrimSpace(target), "<>")
			u, err := resp.Request.URL.Parse(target)
			if err != nil {
				return "", fault.Inputf("referrers Link %q: %w", target, err)
			}
			if u.Host != resp.Request.URL.Host {
				return "", fault.Inputf("referrers Link points to another host %s", u.Host)
			}
			return u.String(), nil
		}
	}
	return "", nil
}

// Referrers lists the manifests whose subject is subject: from the referrers
// API when the registry has it, else from the fallback tag index.
func (c *Client) Referrers(ctx context.Context, subject name.Digest) ([]v1.Descriptor, error) {
	descs, err := c.referrersOf(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", subject, err)
	}
	return descs, nil
}

func (c *Client) referrersOf(ctx context.Context, subject name.Digest) ([]v1.Descriptor, error) {
	repo := subject.Context()
	h, err := v1.NewHash(subject.DigestStr())
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	api, known, done, err := c.awaitReferrersAPI(ctx, repo)
	if err != nil {
		return nil, err
	}
	if !known || api {
		descs, ans, err := c.askReferrers(ctx, repo, h)
		if done != nil {
			done()
		}
		if err != nil {
			return nil, err
		}
		switch ans {
		case answerAPI:
			return descs, nil
		case answerUnknown:
			return nil, nil // no repository, so no fallback tag either
		}
	}
	idx, err := c.fallbackIndex(ctx, repo.Tag(FallbackTag(h)))
	if err != nil {
		return nil, err
	}
	return idx.Manifests, nil
}

// fallbackIndex reads the fallback tag index; a missing tag is an empty one.
func (c *Client) fallbackIndex(ctx context.Context, tag name.Tag) (*v1.IndexManifest, error) {
	empty := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	m, err := c.fetchManifestEntries(ctx, tag, c.opts.limits.Referrers)
	if isNotFound(err) {
		return empty, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	if m.Descriptor.MediaType != types.OCIImageIndex {
		return nil, fault.Inputf("referrers tag %s holds %s, not an OCI index", tag, m.Descriptor.MediaType)
	}
	idx, err := m.Index()
	if err != nil {
		return nil, err
	}
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	return idx, nil
}

// referrerManifest is what PushReferrer reads from the manifest it pushes.
type referrerManifest struct {
	Subject      *v1.Descriptor    `json:"subject"`
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config"`
	Annotations  map[string]string `json:"annotations"`
}

// PushReferrer pushes raw, a manifest whose subject is subject (its blobs
// must be pushed already), by digest. On a registry without the referrers
// API it then adds the manifest's descriptor to the fallback tag index: read,
// merge, write, re-read to confirm, again on a lost race. The manifest is
// pushed first, so the index never lists a missing manifest. The descriptor
// returned carries artifactType and annotations, as a referrers list does.
func (c *Client) PushReferrer(ctx context.Context, subject name.Digest, raw []byte, mediaType string) (v1.Descriptor, error) {
	ds, err := c.PushReferrers(ctx, subject, []RawManifest{{Raw: raw, MediaType: mediaType}})
	if err != nil {
		return v1.Descriptor{}, err
	}
	return ds[0], nil
}

// RawManifest is a manifest as pushed: its bytes and media type.
type RawManifest struct {
	Raw       []byte
	MediaType string
}

// PushReferrers is PushReferrer for several manifests of one subject: all
// are pushed, then, on a registry without the referrers API, added to the
// fallback tag index in one merge and one confirmation rather than one per
// manifest (what promotion of a release with many attachments needs). Each
// manifest is checked before any is pushed. The descriptors are returned in
// the order of ms.
func (c *Client) PushReferrers(ctx context.Context, subject name.Digest, ms []RawManifest) ([]v1.Descriptor, error) {
	ds, err := c.pushReferrers(ctx, subject, ms)
	if err != nil {
		return nil, fmt.Errorf("push referrer of %s: %w", subject, err)
	}
	return ds, nil
}

func (c *Client) pushReferrers(ctx context.Context, subject name.Digest, ms []RawManifest) ([]v1.Descriptor, error) {
	repo := subject.Context()
	h, err := v1.NewHash(subject.DigestStr())
	if err != nil {
		return nil, fault.Wrap(fault.Input, err)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	parsed := make([]referrerManifest, len(ms))
	for i, m := range ms {
		rm := &parsed[i]
		if err := json.Unmarshal(m.Raw, rm); err != nil {
			return nil, fault.Inputf("unparsable manifest: %w", err)
		}
		if rm.Subject == nil {
			return nil, fault.Inputf("manifest has no subject")
		}
		if rm.Subject.Digest != h {
			return nil, fault.Inputf("manifest's subject is %s, not %s", rm.Subject.Digest, h)
		}
	}
	ds := make([]v1.Descriptor, len(ms))
	for i, m := range ms {
		d, err := c.PushManifest(ctx, repo, m.Raw, m.MediaType)
		if err != nil {
			return nil, err
		}
		rm := parsed[i]
		d.ArtifactType = rm.ArtifactType
		if d.ArtifactType == "" && rm.Config != nil && !d.MediaType.IsIndex() {
			d.ArtifactType = string(rm.Config.MediaType)
		}
		d.Annotations = rm.Annotations
		ds[i] = d
	}

	api, known, done, err := c.awaitReferrersAPI(ctx, repo)
	if err != nil {
		return nil, err
	}
	if !known {
		// The repository exists now (we just pushed), so the answer is
		// conclusive on any registry that follows the spec.
		_, ans, err := c.askReferrers(ctx, repo, h)
		done()
		if err != nil {
			return nil, err
		}
		api = ans == answerAPI
	}
	if api {
		return ds, nil
	}
	if err := c.addToFallback(ctx, repo.Tag(FallbackTag(h)), ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// addToFallback merges ds into the fallback tag index.
//
// Writers of this Client take turns (a lock per tag), so they never lose each
// other's entries. Writers elsewhere (other processes) can only be detected,
// since registries offer no conditional tag write: after writing, the index
// is read back, and read again after pauses longer than the time a
// concurrent writer needs between its read and its write, so that an index
// written by someone who had not seen ds shows, and ds is merged again. When
// the read-back shows other writers at work, the confirmation lasts longer:
// their stale writes can still land.
func (c *Client) addToFallback(ctx context.Context, tag name.Tag, ds []v1.Descriptor) error {
	mu := c.tagLock(tag.String())
	mu.Lock()
	defer mu.Unlock()
	contended := false
	for attempt := 1; attempt <= fallbackAttempts; attempt++ {
		start := time.Now()
		idx, err := c.fallbackIndex(ctx, tag)
		if err != nil {
			return err
		}
		known := map[v1.Hash]bool{}
		for _, d := range ds {
			known[d.Digest] = true
		}
		for _, e := range idx.Manifests {
			known[e.Digest] = true
		}
		if !hasAll(idx.Manifests, ds) {
			merged := idx
			for _, d := range ds {
				merged = mergeReferrer(merged, d)
			}
			if len(merged.Manifests) > c.opts.limits.Referrers {
				return fault.Inputf("referrers tag %s would list %d referrers, more than the %d allowed", tag, len(merged.Manifests), c.opts.limits.Referrers)
			}
			raw, err := json.Marshal(merged)
			if err != nil {
				return err
			}
			if err := c.putManifest(ctx, tag.Context(), tag.TagStr(), raw, string(types.OCIImageIndex)); err != nil {
				return fmt.Errorf("write %s: %w", tag, err)
			}
		}
		took := time.Since(start)
		back, err := c.fallbackIndex(ctx, tag)
		if err != nil {
			return err
		}
		for _, e := range back.Manifests {
			if !known[e.Digest] {
				contended = true // someone else wrote meanwhile
			}
		}
		ok := hasAll(back.Manifests, ds)
		contended = contended || !ok
		pauses := []time.Duration{max(2*took, 10*time.Millisecond)}
		if contended {
			pauses = append(pauses, max(4*took, 50*time.Millisecond), max(8*took, 150*time.Millisecond))
		}
		for _, p := range pauses {
			if !ok {
				break
			}
			if err := sleep(ctx, p+rand.N(10*time.Millisecond)); err != nil {
				return fault.Wrap(fault.Operational, err)
			}
			if ok, err = c.fallbackHasAll(ctx, tag, ds); err != nil {
				return err
			}
		}
		if ok {
			return nil
		}
		// Lost a race with another writer: try again a little later.
		if err := sleep(ctx, rand.N(time.Duration(attempt)*20*time.Millisecond)); err != nil {
			return fault.Wrap(fault.Operational, err)
		}
	}
	return fault.Operationalf("referrers tag %s: lost the race with other writers %d times", tag, fallbackAttempts)
}

func (c *Client) fallbackHasAll(ctx context.Context, tag name.Tag, ds []v1.Descriptor) (bool, error) {
	idx, err := c.fallbackIndex(ctx, tag)
	if err != nil {
		return false, err
	}
	return hasAll(idx.Manifests, ds), nil
}

// hasAll reports whether every one of ds is listed in descs.
func hasAll(descs []v1.Descriptor, ds []v1.Descriptor) bool {
	listed := make(map[v1.Hash]bool, len(descs))
	for _, d := range descs {
		listed[d.Digest] = true
	}
	for _, d := range ds {
		if !listed[d.Digest] {
			return false
		}
	}
	return true
}

// mergeReferrer returns idx with d added, entries deduplicated by digest
// (the newest wins), other fields of idx kept.
func mergeReferrer(idx *v1.IndexManifest, d v1.Descriptor) *v1.IndexManifest {
	out := *idx
	out.SchemaVersion = 2
	out.MediaType = types.OCIImageIndex
	out.Manifests = make([]v1.Descriptor, 0, len(idx.Manifests)+1)
	seen := map[v1.Hash]bool{d.Digest: true}
	for _, e := range idx.Manifests {
		if !seen[e.Digest] {
			seen[e.Digest] = true
			out.Manifests = append(out.Manifests, e)
		}
	}
	out.Manifests = append(out.Manifests, v1.Descriptor{
		MediaType:    d.MediaType,
		Size:         d.Size,
		Digest:       d.Digest,
		ArtifactType: d.ArtifactType,
		Annotations:  d.Annotations,
	})
	return &out
}
