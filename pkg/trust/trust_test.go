package trust

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedSigstore()
	os.Exit(code)
}

// fixture is the test Sigstore's trusted root, as file bytes, and its
// Fulcio root certificate.
func fixture(t *testing.T) ([]byte, *x509.Certificate) {
	t.Helper()
	s := testenv.SharedSigstore(t)
	data, err := os.ReadFile(s.TrustedRootPath)
	if err != nil {
		t.Fatal(err)
	}
	ca := s.TrustedRoot().FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
	return data, ca.Root
}

func hasFulcioCA(tm root.TrustedMaterial, cert *x509.Certificate) bool {
	for _, ca := range tm.FulcioCertificateAuthorities() {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok && f.Root.Equal(cert) {
			return true
		}
	}
	return false
}

func tufOptions(r *tufRepo, cacheDir string) Options {
	return Options{MirrorURL: r.URL(), CacheDir: cacheDir, Root: r.rootJSON()}
}

func mustLoad(t *testing.T, opts Options) root.TrustedMaterial {
	t.Helper()
	tm, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tm
}

func wantErr(t *testing.T, err error, kind fault.Kind, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want a %s error", kind)
	}
	if got := fault.KindOf(err); got != kind {
		t.Errorf("kind = %s, want %s (%v)", got, kind, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

func TestLoadTUFFirstFetchThenCache(t *testing.T) {
	trJSON, fulcio := fixture(t)
	repo := newTUFRepo(t, trJSON)
	cache := t.TempDir()
	opts := tufOptions(repo, cache)

	if !hasFulcioCA(mustLoad(t, opts), fulcio) {
		t.Fatal("material from TUF lacks the test Fulcio CA")
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "*", "root-*", "targets", targetName))
	if len(cached) != 1 {
		t.Fatalf("cached targets %v, want one %s", cached, targetName)
	}

	t.Run("offline", func(t *testing.T) {
		before := repo.requests.Load()
		offline := opts
		offline.Offline = true
		if !hasFulcioCA(mustLoad(t, offline), fulcio) {
			t.Error("material from the cache lacks the test Fulcio CA")
		}
		if n := repo.requests.Load() - before; n != 0 {
			t.Errorf("offline Load made %d requests to the mirror", n)
		}
	})
	t.Run("mirror down", func(t *testing.T) {
		repo.srv.Close()
		if !hasFulcioCA(mustLoad(t, opts), fulcio) {
			t.Error("material from the cache lacks the test Fulcio CA")
		}
	})
}

func TestLoadTUFPicksUpNewTarget(t *testing.T) {
	trJSON, fulcio := fixture(t)
	repo := newTUFRepo(t, trJSON)
	opts := tufOptions(repo, t.TempDir())

	if n := len(mustLoad(t, opts).FulcioCertificateAuthorities()); n != 1 {
		t.Fatalf("first load: %d Fulcio CAs, want 1", n)
	}
	base, err := root.NewTrustedRootFromJSON(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	rotated, newCA := trustedRootWithExtraCA(t, base)
	repo.release(targetName, rotated)

	tm := mustLoad(t, opts)
	if !hasFulcioCA(tm, newCA) || !hasFulcioCA(tm, fulcio) {
		t.Fatalf("after a new release: Fulcio CAs %d, want the old and the new", len(tm.FulcioCertificateAuthorities()))
	}
	opts.Offline = true
	if !hasFulcioCA(mustLoad(t, opts), newCA) {
		t.Error("the cache still holds the old trusted root")
	}
}

func TestLoadTUFExpiredMetadata(t *testing.T) {
	trJSON, _ := fixture(t)
	future := func() time.Time { return time.Now().AddDate(0, 0, 8) }
	tests := []struct {
		name string
		// prepare may populate the cache and change the repository; it
		// returns the options to Load with and the expiry to report.
		prepare func(r *tufRepo, opts Options) (Options, time.Time)
		want    []string
	}{
		{
			name: "mirror serves an expired timestamp",
			prepare: func(r *tufRepo, opts Options) (Options, time.Time) {
				at := time.Now().Add(-time.Hour).Truncate(time.Second)
				r.expireTimestamp(at)
				return opts, at
			},
			want: []string{"timestamp.json from http://127.0.0.1:", "clock"},
		},
		{
			name: "mirror serves an expired timestamp over a valid cache",
			prepare: func(r *tufRepo, opts Options) (Options, time.Time) {
				mustLoad(t, opts)
				at := time.Now().Add(-time.Minute).Truncate(time.Second)
				r.expireTimestamp(at)
				return opts, at
			},
			want: []string{"timestamp.json from http://127.0.0.1:"},
		},
		{
			name: "offline with an expired cache",
			prepare: func(r *tufRepo, opts Options) (Options, time.Time) {
				mustLoad(t, opts)
				opts.Offline, opts.Now = true, future
				return opts, r.timestamp.Signed.Expires
			},
			want: []string{"offline: ", "cached in ", "--trusted-root"},
		},
		{
			name: "mirror down with an expired cache",
			prepare: func(r *tufRepo, opts Options) (Options, time.Time) {
				mustLoad(t, opts)
				r.srv.Close()
				opts.Now = future
				return opts, r.timestamp.Signed.Expires
			},
			want: []string{"cannot reach TUF mirror", "cached in ", "--trusted-root"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newTUFRepo(t, trJSON)
			opts, at := tt.prepare(repo, tufOptions(repo, t.TempDir()))
			_, err := Load(context.Background(), opts)
			want := append([]string{"TUF metadata expired on " + at.UTC().Format(time.RFC3339)}, tt.want...)
			wantErr(t, err, fault.Operational, want...)
			if !errors.As(err, new(*metadata.ErrExpiredMetadata)) {
				t.Errorf("error %v does not wrap go-tuf's ErrExpiredMetadata", err)
			}
		})
	}
}

func TestLoadTUFRefusesUntrustedContent(t *testing.T) {
	trJSON, _ := fixture(t)
	tests := []struct {
		name    string
		prepare func(t *testing.T, r *tufRepo, opts Options) Options
		wantAs  error
		want    string
	}{
		{
			name: "tampered target",
			prepare: func(_ *testing.T, r *tufRepo, opts Options) Options {
				r.tamperTarget(targetName)
				return opts
			},
			wantAs: &metadata.ErrLengthOrHashMismatch{},
			want:   "does not match the length and hash",
		},
		{
			name: "targets.json altered after signing",
			prepare: func(_ *testing.T, r *tufRepo, opts Options) Options {
				r.targets.Signed.Targets["extra"] = r.targets.Signed.Targets[targetName]
				r.writeMeta("1.targets.json", r.targets)
				return opts
			},
			wantAs: &metadata.ErrUnsignedMetadata{},
			want:   "failed verification",
		},
		{
			name: "trusting the root of another repository",
			prepare: func(t *testing.T, _ *tufRepo, opts Options) Options {
				opts.Root = newTUFRepo(t, trJSON).rootJSON()
				return opts
			},
			wantAs: &metadata.ErrUnsignedMetadata{},
			want:   "failed verification",
		},
		{
			name: "root rotation signed by an unknown key",
			prepare: func(_ *testing.T, r *tufRepo, opts Options) Options {
				r.forgeRoot()
				return opts
			},
			wantAs: &metadata.ErrUnsignedMetadata{},
			want:   "failed verification",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newTUFRepo(t, trJSON)
			cache := t.TempDir()
			opts := tt.prepare(t, repo, tufOptions(repo, cache))
			_, err := Load(context.Background(), opts)
			wantErr(t, err, fault.Operational, tt.want)
			if !errors.Is(err, tt.wantAs) {
				t.Errorf("error %v is not a %T", err, tt.wantAs)
			}
			if got, _ := filepath.Glob(filepath.Join(cache, "*", "*", "targets", targetName)); len(got) != 0 {
				t.Errorf("refused content was cached: %v", got)
			}
		})
	}
}

// A cache filled through one initial root must not be trusted by another:
// the cached root.json was only ever verified from the first.
func TestLoadTUFCacheIsPerInitialRoot(t *testing.T) {
	trJSON, _ := fixture(t)
	repo := newTUFRepo(t, trJSON)
	cache := t.TempDir()
	mustLoad(t, tufOptions(repo, cache))

	other := newTUFRepo(t, trJSON)
	opts := tufOptions(repo, cache)
	opts.Root, opts.Offline = other.rootJSON(), true
	_, err := Load(context.Background(), opts)
	wantErr(t, err, fault.Operational, "no cached TUF metadata", "--trusted-root")
}

func TestLoadTUFUnreachableWithoutCache(t *testing.T) {
	trJSON, _ := fixture(t)
	repo := newTUFRepo(t, trJSON)
	down := httptest.NewServer(nil)
	down.Close()

	opts := tufOptions(repo, t.TempDir())
	opts.MirrorURL = down.URL
	_, err := Load(context.Background(), opts)
	wantErr(t, err, fault.Operational, "cannot reach TUF mirror "+down.URL, "no cached TUF metadata", "--trusted-root")

	opts.Offline = true
	_, err = Load(context.Background(), opts)
	wantErr(t, err, fault.Operational, "offline: no cached TUF metadata", "--trusted-root")
}

func TestLoadTUFCanceled(t *testing.T) {
	trJSON, _ := fixture(t)
	repo := newTUFRepo(t, trJSON)
	opts := tufOptions(repo, t.TempDir())
	mustLoad(t, opts)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Load(ctx, opts)
	wantErr(t, err, fault.Operational)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v is not context.Canceled", err)
	}
}

func TestLoadTrustedRootFile(t *testing.T) {
	trJSON, fulcio := fixture(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", trJSON)
	tests := []struct {
		name string
		path string
		want string // "" for success
	}{
		{"valid", good, ""},
		{"not JSON", write("garbage.json", []byte("not json {")), "garbage.json"},
		{"wrong shape", write("shape.json", []byte(`{"certificateAuthorities": "x"}`)), "shape.json"},
		{"trusts nothing", write("empty.json", []byte(`{"mediaType": "`+root.TrustedRootMediaType01+`"}`)), "empty.json: names no certificate authority"},
		{"truncated", write("cut.json", trJSON[:len(trJSON)/2]), "cut.json"},
		{"too large", write("big.json", make([]byte, maxTrustedRootSize+1)), "big.json: larger than"},
		{"missing", filepath.Join(dir, "missing.json"), "missing.json"},
	}
	down := httptest.NewServer(nil)
	down.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A mirror that cannot be reached shows the file path never
			// touches the network.
			tm, err := Load(context.Background(), Options{TrustedRootFile: tt.path, MirrorURL: down.URL, CacheDir: t.TempDir()})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if !hasFulcioCA(tm, fulcio) {
					t.Error("material lacks the test Fulcio CA")
				}
				return
			}
			wantErr(t, err, fault.Input, tt.want)
			if tm != nil {
				t.Error("Load returned material with its error")
			}
		})
	}
}

func TestLoadBadOptions(t *testing.T) {
	trJSON, _ := fixture(t)
	repo := newTUFRepo(t, trJSON)
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"initial root not JSON", func(o *Options) { o.Root = []byte("nope") }, "initial TUF root"},
		{"initial root badly signed", func(o *Options) {
			o.Root = []byte(strings.Replace(string(o.Root), `"version":1`, `"version":7`, 1))
		}, "initial TUF root"},
		{"mirror not http", func(o *Options) { o.MirrorURL = "ftp://127.0.0.1/tuf" }, "TUF mirror URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tufOptions(repo, t.TempDir())
			tt.edit(&opts)
			_, err := Load(context.Background(), opts)
			wantErr(t, err, fault.Input, tt.want)
		})
	}
}

// The defaults are checked on the resolved source, without contacting the
// public-good mirror.
func TestDefaults(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	s, err := newSource(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.mirror != tuf.DefaultMirror {
		t.Errorf("mirror %q, want %q", s.mirror, tuf.DefaultMirror)
	}
	if string(s.anchor) != string(tuf.DefaultRoot()) {
		t.Error("initial root is not sigstore-go's embedded public-good root")
	}
	if want := filepath.Join(xdg, "seal", "tuf", "tuf-repo-cdn.sigstore.dev") + string(filepath.Separator); !strings.HasPrefix(s.dir, want) {
		t.Errorf("cache %q, want under %q", s.dir, want)
	}
}

func TestMetadataRole(t *testing.T) {
	for name, want := range map[string]string{
		"timestamp.json": "timestamp", "12.snapshot.json": "snapshot", "3.root.json": "root", "1.targets.json": "targets",
	} {
		if got := metadataRole(name); got != want {
			t.Errorf("metadataRole(%q) = %q, want %q", name, got, want)
		}
	}
}
