package registry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
)

func start(t *testing.T, cfg registry.Config) *registry.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := registry.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// pushRandom pushes a small random image to host/repo:tag and returns its reference by digest.
func pushRandom(t *testing.T, host, repoTag string, opts ...remote.Option) name.Digest {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(d.String())
}

func TestStartServesOnChosenPort(t *testing.T) {
	s := start(t, registry.Config{Memory: true})
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" || port == "0" {
		t.Errorf("Addr = %s, want 127.0.0.1 with a real port", s.Addr())
	}
	if want := "http://" + s.Addr(); s.URL() != want {
		t.Errorf("URL = %s, want %s", s.URL(), want)
	}
	resp, err := http.Get(s.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ = %s, want 200", resp.Status)
	}
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Errorf("Docker-Distribution-API-Version = %q", v)
	}
}

// storages are the registry's two kinds of storage.
var storages = []struct {
	name string
	cfg  func(t *testing.T) registry.Config
}{
	{"memory", func(*testing.T) registry.Config { return registry.Config{Memory: true} }},
	{"filesystem", func(t *testing.T) registry.Config { return registry.Config{RootDir: t.TempDir()} }},
}

func TestPushPullDelete(t *testing.T) {
	for _, tc := range storages {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.cfg(t))
			d := pushRandom(t, s.Addr(), "app:v1")
			got, err := remote.Head(d.Context().Tag("v1"))
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest.String() != d.DigestStr() {
				t.Errorf("tag v1 → %s, want %s", got.Digest, d.DigestStr())
			}
			// Deletes are enabled: promotion may have to replace what it wrote.
			if err := remote.Delete(d); err != nil {
				t.Fatalf("delete %s: %v", d, err)
			}
			var terr *transport.Error
			if _, err := remote.Head(d); !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
				t.Errorf("after delete, HEAD %s = %v, want 404", d, err)
			}
		})
	}
}

func TestFilesystemStoragePersists(t *testing.T) {
	root := t.TempDir()
	s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", RootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	d := pushRandom(t, s.Addr(), "app:v1")
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "docker", "registry", "v2", "repositories", "app")); err != nil {
		t.Errorf("repository not under the root directory: %v", err)
	}

	s2 := start(t, registry.Config{RootDir: root})
	ref, err := name.ParseReference(s2.Addr() + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Head(ref)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got.Digest.String() != d.DigestStr() {
		t.Errorf("after restart, tag v1 → %s, want %s", got.Digest, d.DigestStr())
	}
}

// Distribution v3 has no OCI 1.1 referrers API: clients must fall back to
// the referrers tag, which is why seal tests against it.
func TestNoReferrersAPI(t *testing.T) {
	s := start(t, registry.Config{Memory: true})
	d := pushRandom(t, s.Addr(), "app:v1")
	resp, err := http.Get(s.URL() + "/v2/app/referrers/" + d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET referrers = %s, want 404", resp.Status)
	}
}

func TestTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	tlsFiles := testenv.NewLoopbackTLS(t, dir)
	htpasswd := filepath.Join(dir, "htpasswd")
	const user, pass = "alice", "correct-horse-battery"
	testenv.WriteHTPasswd(t, htpasswd, user, pass)

	s := start(t, registry.Config{Memory: true, HTPasswd: htpasswd, TLSCert: tlsFiles.CertFile, TLSKey: tlsFiles.KeyFile})
	if want := "https://" + s.Addr(); s.URL() != want {
		t.Errorf("URL = %s, want %s", s.URL(), want)
	}
	tr := tlsFiles.Transport()
	defer tr.CloseIdleConnections()

	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Addr() + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}

	var terr *transport.Error
	err = remote.Write(ref, img, remote.WithTransport(tr))
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push = %v, want 401", err)
	}
	err = remote.Write(ref, img, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: user, Password: "wrong"}))
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("push with a wrong password = %v, want 401", err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatalf("authenticated push: %v", err)
	}

	// Plain HTTP gets no registry answer from a TLS-only listener.
	resp, err := http.Get("http://" + s.Addr() + "/v2/")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener = %s, want 400 or an error", resp.Status)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tlsFiles := testenv.NewLoopbackTLS(t, dir)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name string
		cfg  registry.Config
		kind fault.Kind
	}{
		{"root and memory", registry.Config{RootDir: dir, Memory: true}, fault.Input},
		{"no storage", registry.Config{}, fault.Input},
		{"missing htpasswd", registry.Config{Memory: true, HTPasswd: filepath.Join(dir, "nope")}, fault.Input},
		{"cert without key", registry.Config{Memory: true, TLSCert: tlsFiles.CertFile}, fault.Input},
		{"key without cert", registry.Config{Memory: true, TLSKey: tlsFiles.KeyFile}, fault.Input},
		{"mismatched pair", registry.Config{Memory: true, TLSCert: tlsFiles.CACertFile, TLSKey: tlsFiles.KeyFile}, fault.Input},
		{"address in use", registry.Config{Memory: true, Addr: busy.Addr().String()}, fault.Operational},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Addr == "" {
				tc.cfg.Addr = "127.0.0.1:0"
			}
			s, err := registry.Start(context.Background(), tc.cfg)
			if err == nil {
				s.Close(context.Background())
				t.Fatal("Start succeeded")
			}
			if k := fault.KindOf(err); k != tc.kind {
				t.Errorf("kind = %v, want %v (%v)", k, tc.kind, err)
			}
		})
	}
	// Distribution creates a missing htpasswd file with a random password;
	// Start must refuse before that happens.
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Errorf("missing htpasswd file was created: %v", err)
	}
}

func TestCloseStopsServing(t *testing.T) {
	s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	pushRandom(t, s.Addr(), "app:v1")
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", s.Addr())
	}
}

// A connection that never sends a request (clients dial ahead, and
// go-containerregistry races https against http) must not hold Close for the
// 5 seconds net/http grants such connections.
func TestCloseIsPromptWithSilentConnections(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		cfg := registry.Config{Addr: "127.0.0.1:0", Memory: true}
		if withTLS {
			tlsFiles := testenv.NewLoopbackTLS(t, t.TempDir())
			cfg.TLSCert, cfg.TLSKey = tlsFiles.CertFile, tlsFiles.KeyFile
		}
		s, err := registry.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(50 * time.Millisecond) // let the server see the connection
		start := time.Now()
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("TLS %v: Close took %v with a silent connection open", withTLS, d)
		}
	}
}

// The registry is a library: it must not write to the process's stdout or
// stderr, not even for failed requests (Distribution logs each of them).
func TestSilent(t *testing.T) {
	out := captureFDs(t, func() {
		s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", Memory: true})
		if err != nil {
			t.Error(err)
			return
		}
		d := pushRandom(t, s.Addr(), "app:v1")
		for _, path := range []string{"/v2/app/manifests/missing", "/v2/nope/blobs/" + d.DigestStr(), "/v2/app/referrers/" + d.DigestStr()} {
			resp, err := http.Get(s.URL() + path)
			if err != nil {
				t.Error(err)
				continue
			}
			resp.Body.Close()
		}
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if out != "" {
		t.Errorf("the registry printed:\n%s", out)
	}
}

// captureFDs runs f with file descriptors 1 and 2 pointing to a pipe and
// returns what was written there: loggers keep their own *os.File copies, so
// swapping the os.Stdout variable would not see them.
func captureFDs(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := map[int]int{}
	for _, fd := range []int{1, 2} {
		dup, err := syscall.Dup(fd)
		if err != nil {
			t.Fatal(err)
		}
		saved[fd] = dup
		if err := syscall.Dup2(int(w.Fd()), fd); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	func() {
		defer func() {
			for fd, dup := range saved {
				_ = syscall.Dup2(dup, fd)
				syscall.Close(dup)
			}
			w.Close()
		}()
		f()
	}()
	out := <-done
	r.Close()
	return strings.TrimSpace(out)
}
