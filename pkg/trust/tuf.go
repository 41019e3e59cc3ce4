package trust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/seal-dev/seal/pkg/fault"
)

// targetName is the TUF target holding the Sigstore trusted root, as
// published by the public-good repository.
const targetName = "trusted_root.json"

// hint ends the messages of failures the user can avoid by going offline.
const hint = "pass --trusted-root FILE to verify without TUF"

// source is one TUF repository as seen from one initial root.
//
// The go-tuf updater is driven directly rather than through sigstore-go's
// tuf.Client, which wraps the same updater but cannot take a reference time,
// always restarts from the embedded root, and turns a cache-only request
// into a network refresh once the cache has expired.
type source struct {
	mirror string
	// dir holds the metadata verified from anchor: keying it by the anchor
	// means a cached root.json is only ever trusted by the root that
	// verified it, so a different Options.Root never inherits the cache.
	dir    string
	anchor []byte
	now    func() time.Time
}

func loadTUF(ctx context.Context, opts Options) (*root.TrustedRoot, error) {
	s, err := newSource(opts)
	if err != nil {
		return nil, err
	}
	if opts.Offline {
		tr, err := s.update(ctx, true)
		if err != nil {
			return nil, operational("offline: %w; %s", err, hint)
		}
		return tr, nil
	}
	tr, err := s.update(ctx, false)
	if err == nil {
		return tr, nil
	}
	if !mirrorUnavailable(err) {
		if errors.As(err, new(*expiredError)) {
			return nil, operational("%w; the mirror serves stale metadata or this machine's clock is wrong; %s", err, hint)
		}
		return nil, operational("%w", err)
	}
	// The mirror is down, not lying: metadata verified earlier stays
	// trustworthy until it expires, which is what TUF's expiry is for.
	tr, cacheErr := s.update(ctx, true)
	if cacheErr == nil {
		return tr, nil
	}
	return nil, operational("cannot reach TUF mirror %s (%w) and no usable cache (%w); %s", s.mirror, err, cacheErr, hint)
}

func newSource(opts Options) (*source, error) {
	s := &source{mirror: strings.TrimRight(opts.MirrorURL, "/"), anchor: opts.Root, now: opts.Now}
	if s.mirror == "" {
		s.mirror = tuf.DefaultMirror
	}
	if u, err := url.Parse(s.mirror); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fault.Inputf("TUF mirror URL %q: want an http(s) URL", s.mirror)
	}
	if len(s.anchor) == 0 {
		s.anchor = tuf.DefaultRoot()
	}
	// Checks the root's own signatures too, so a bad anchor is reported as
	// the input mistake it is rather than as a repository failure.
	if _, err := trustedmetadata.New(s.anchor); err != nil {
		return nil, fault.Inputf("initial TUF root: %w", err)
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return nil, operational("no cache directory for TUF metadata (%w); set XDG_CACHE_HOME or %s", err, hint)
		}
		cacheDir = filepath.Join(userCache, "seal", "tuf")
	}
	sum := sha256.Sum256(s.anchor)
	s.dir = filepath.Join(cacheDir, tuf.URLToPath(s.mirror), "root-"+hex.EncodeToString(sum[:8]))
	return s, nil
}

// update runs the TUF client workflow — online, or over the cache alone
// when local — and returns the trusted root target it verifies.
func (s *source) update(ctx context.Context, local bool) (*root.TrustedRoot, error) {
	if local {
		if _, err := os.Stat(filepath.Join(s.dir, metadata.TIMESTAMP+".json")); err != nil {
			return nil, fmt.Errorf("no cached TUF metadata for %s in %s", s.mirror, s.dir)
		}
	}
	f := newFetcher(ctx, s.mirror, local)
	up, err := s.updater(f, local)
	if err != nil {
		return nil, fmt.Errorf("TUF metadata in %s: %w", s.dir, err)
	}
	if err := up.Refresh(); err != nil {
		if e := s.explain(err, f); e != nil {
			return nil, e
		}
		if local {
			return nil, fmt.Errorf("cached TUF metadata in %s: %w", s.dir, err)
		}
		return nil, fmt.Errorf("TUF metadata from %s failed verification: %w", s.mirror, err)
	}
	info, err := up.GetTargetInfo(targetName)
	if err != nil {
		if e := s.explain(err, f); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("find %s in TUF metadata of %s: %w", targetName, s.mirror, err)
	}
	_, data, err := up.FindCachedTarget(info, "")
	if err != nil {
		return nil, fmt.Errorf("cached %s: %w", targetName, err)
	}
	if data == nil {
		if local {
			return nil, fmt.Errorf("%s of %s is not in the cache %s", targetName, s.mirror, s.dir)
		}
		if _, data, err = up.DownloadTarget(info, "", ""); err != nil {
			if errors.As(err, new(*metadata.ErrLengthOrHashMismatch)) || errors.As(err, new(*metadata.ErrDownloadLengthMismatch)) {
				return nil, fmt.Errorf("%s from %s does not match the length and hash its TUF metadata signs: %w", targetName, s.mirror, err)
			}
			return nil, fmt.Errorf("download %s from %s: %w", targetName, s.mirror, err)
		}
	}
	tr, err := parseTrustedRoot(data)
	if err != nil {
		return nil, fmt.Errorf("%s from %s: %w", targetName, s.mirror, err)
	}
	return tr, nil
}

// updater starts from the cached root when there is one, so that root
// rotations are walked once and a rotated repository stays usable offline;
// a cached root that no longer loads falls back to the anchor.
func (s *source) updater(f *fetcher, local bool) (*updater.Updater, error) {
	var up *updater.Updater
	var err error
	for _, trusted := range s.startRoots() {
		var cfg *config.UpdaterConfig
		if cfg, err = config.New(s.mirror, trusted); err != nil {
			return nil, err
		}
		cfg.LocalMetadataDir = s.dir
		cfg.LocalTargetsDir = filepath.Join(s.dir, "targets")
		cfg.Fetcher = f
		cfg.UnsafeLocalMode = local
		if up, err = updater.New(cfg); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if s.now != nil {
		up.UnsafeSetRefTime(s.now().UTC())
	}
	return up, nil
}

func (s *source) startRoots() [][]byte {
	cached, err := os.ReadFile(filepath.Join(s.dir, metadata.ROOT+".json"))
	if err != nil || len(cached) == 0 {
		return [][]byte{s.anchor}
	}
	return [][]byte{cached, s.anchor}
}

// expiredError names the metadata that expired and when.
type expiredError struct {
	role  string
	where string // "from <mirror>" or "cached in <dir>"
	at    time.Time
	err   error
}

func (e *expiredError) Error() string {
	if e.at.IsZero() {
		return fmt.Sprintf("TUF metadata expired: %s.json %s (%v)", e.role, e.where, e.err)
	}
	return fmt.Sprintf("TUF metadata expired on %s: %s.json %s", e.at.UTC().Format(time.RFC3339), e.role, e.where)
}

func (e *expiredError) Unwrap() error { return e.err }

// explain returns the errors that need no more context — an unreachable
// mirror as is, an expiry dated — or nil for the caller to describe.
func (s *source) explain(err error, f *fetcher) error {
	var expired *metadata.ErrExpiredMetadata
	if errors.As(err, &expired) {
		e := &expiredError{role: expiredRole(expired.Msg), err: err}
		doc, downloaded := f.seen[e.role]
		if downloaded {
			e.where = "from " + s.mirror
		} else {
			e.where = "cached in " + s.dir
			doc, _ = os.ReadFile(filepath.Join(s.dir, e.role+".json"))
		}
		e.at = expiry(doc)
		return e
	}
	if mirrorUnavailable(err) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("TUF update from %s: %w", s.mirror, err)
	}
	return nil
}

// expiredRole reads the role out of go-tuf's message ("timestamp.json is
// expired", "final root.json is expired", "new targets is expired").
func expiredRole(msg string) string {
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS, metadata.ROOT} {
		if strings.Contains(msg, role) {
			return role
		}
	}
	return "metadata"
}

func expiry(doc []byte) time.Time {
	var m struct {
		Signed struct {
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if json.Unmarshal(doc, &m) != nil {
		return time.Time{}
	}
	return m.Signed.Expires
}
