// Package trust loads the Sigstore trusted material that verification checks
// bundles against: either a trusted_root.json given by the user (fully
// offline) or the one a TUF repository publishes — by default the Sigstore
// public-good instance — kept in an on-disk cache so that later runs work
// while the mirror is unreachable, for as long as the signed metadata lasts.
package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/seal-dev/seal/pkg/fault"
)

// Options say where the trusted material comes from.
type Options struct {
	// TrustedRootFile is a trusted_root.json to use as is; when set, nothing
	// else applies and nothing is fetched.
	TrustedRootFile string

	// MirrorURL is the TUF repository (default: the public-good mirror,
	// https://tuf-repo-cdn.sigstore.dev).
	MirrorURL string
	// CacheDir holds the verified TUF metadata and targets between runs
	// (default: $XDG_CACHE_HOME/seal/tuf, i.e. os.UserCacheDir()/seal/tuf).
	CacheDir string
	// Root is the initial trusted TUF root.json that the repository's
	// metadata must chain to (default: the public-good root embedded in
	// sigstore-go).
	Root []byte
	// Offline uses the cache only and never contacts the mirror.
	Offline bool
	// Now is the reference time for metadata expiry (default: the clock);
	// for tests.
	Now func() time.Time
}

// maxTrustedRootSize caps what we read from a user-supplied file: real
// trusted roots are tens of kilobytes.
const maxTrustedRootSize = 4 << 20

// Load returns the trusted material opts designate. Errors carry a fault
// kind: a bad file or initial root is Input; an unreachable mirror without a
// usable cache, expired metadata and a TUF repository that fails its checks
// are Operational — the environment, not the images, is at fault, and no
// image has been judged.
func Load(ctx context.Context, opts Options) (root.TrustedMaterial, error) {
	var tr *root.TrustedRoot
	var err error
	if opts.TrustedRootFile != "" {
		tr, err = loadFile(opts.TrustedRootFile)
	} else {
		tr, err = loadTUF(ctx, opts)
	}
	if err != nil {
		// Not a nil *TrustedRoot in a non-nil interface.
		return nil, err
	}
	return tr, nil
}

func loadFile(path string) (*root.TrustedRoot, error) {
	f, err := os.Open(path)
	if err != nil {
		// The PathError would name the file a second time.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fault.Inputf("read trusted root %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTrustedRootSize+1))
	if err != nil {
		return nil, fault.Inputf("read trusted root %s: %w", path, err)
	}
	if len(data) > maxTrustedRootSize {
		return nil, fault.Inputf("read trusted root %s: larger than %d bytes", path, maxTrustedRootSize)
	}
	tr, err := parseTrustedRoot(data)
	if err != nil {
		return nil, fault.Inputf("trusted root %s: %w", path, err)
	}
	return tr, nil
}

// parseTrustedRoot also refuses a root that trusts nothing: protojson
// accepts "{}", and a verifier built on it would fail every image with a
// message that hides the real mistake.
func parseTrustedRoot(data []byte) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, err
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 && len(tr.TimestampingAuthorities()) == 0 &&
		len(tr.RekorLogs()) == 0 && len(tr.CTLogs()) == 0 {
		return nil, errors.New("names no certificate authority, timestamp authority or log")
	}
	return tr, nil
}

func operational(format string, args ...any) error {
	return fault.Wrap(fault.Operational, fmt.Errorf(format, args...))
}
