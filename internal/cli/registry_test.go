package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/seal-dev/seal/internal/testenv"
)

var listeningLine = regexp.MustCompile(`(?m)^listening on (https?)://(127\.0\.0\.1:[0-9]+)$`)

// startServe runs `seal registry serve args…` in-process until the returned
// stop function cancels its context (as SIGINT does through Main) and
// returns the command's error. It returns the scheme and the address printed.
func startServe(t *testing.T, args ...string) (scheme, addr string, stop func() error) {
	t.Helper()
	stderr := &lockedBuffer{}
	var stdout bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: stderr}
	root := NewRoot(g)
	root.SetArgs(append([]string{"registry", "serve", "--addr", "127.0.0.1:0"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(15 * time.Second):
				stopErr = errors.New("serve did not stop within 15s of its context ending")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })

	deadline := time.After(10 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(stderr.String()); m != nil {
			if stdout.Len() != 0 {
				t.Errorf("serve wrote to stdout: %q", stdout.String())
			}
			return m[1], m[2], stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned before listening: %v (stderr %q)", err, stderr.String())
		case <-deadline:
			t.Fatalf("serve printed no listening line within 10s (stderr %q)", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func pushRandomImage(t *testing.T, ref string, opts ...remote.Option) string {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func assertClosed(t *testing.T, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after serve stopped", addr)
	}
}

func TestRegistryServe(t *testing.T) {
	root := t.TempDir()
	scheme, addr, stop := startServe(t, "--root", root)
	if scheme != "http" {
		t.Errorf("scheme = %s, want http", scheme)
	}
	digest := pushRandomImage(t, addr+"/app:v1")
	ref, err := name.ParseReference(addr + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != digest {
		t.Errorf("app:v1 → %s, want %s", desc.Digest, digest)
	}
	if _, err := os.Stat(filepath.Join(root, "docker", "registry", "v2", "repositories", "app")); err != nil {
		t.Errorf("nothing stored under --root: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after its context ended, want nil", err)
	}
	assertClosed(t, addr)
}

func TestRegistryServeDefaultRoot(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	_, addr, stop := startServe(t)
	pushRandomImage(t, addr+"/app:v1")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "seal", "registry", "docker", "registry", "v2", "repositories", "app")); err != nil {
		t.Errorf("nothing stored under $XDG_DATA_HOME/seal/registry: %v", err)
	}
}

func TestDefaultRegistryRoot(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct{ xdg, want string }{
		{"/srv/data", "/srv/data/seal/registry"},
		{"", filepath.Join(home, ".local/share/seal/registry")},
		{"relative/data", filepath.Join(home, ".local/share/seal/registry")},
	} {
		t.Setenv("XDG_DATA_HOME", tc.xdg)
		got, err := defaultRegistryRoot()
		if err != nil || got != tc.want {
			t.Errorf("XDG_DATA_HOME=%q: %q, %v; want %q", tc.xdg, got, err, tc.want)
		}
	}
}

func TestRegistryServeMemoryTLSAuth(t *testing.T) {
	dir := t.TempDir()
	tlsFiles := testenv.NewLoopbackTLS(t, dir)
	htpasswd := filepath.Join(dir, "htpasswd")
	const user, pass = "ci", "serve-test-password-7f3a"
	testenv.WriteHTPasswd(t, htpasswd, user, pass)

	scheme, addr, stop := startServe(t, "--memory", "--htpasswd", htpasswd,
		"--tls-cert", tlsFiles.CertFile, "--tls-key", tlsFiles.KeyFile)
	if scheme != "https" {
		t.Errorf("scheme = %s, want https", scheme)
	}
	tr := tlsFiles.Transport()
	defer tr.CloseIdleConnections()

	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	var terr *transport.Error
	if err := remote.Write(ref, img, remote.WithTransport(tr)); !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous push = %v, want 401", err)
	}
	pushRandomImage(t, addr+"/app:v1", remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	// An open HTTP/2 connection would hold the graceful stop for its 1s GOAWAY wait.
	tr.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryServeUsage(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"root and memory", []string{"--root", dir, "--memory"}, 2, "--root and --memory are exclusive"},
		{"cert without key", []string{"--memory", "--tls-cert", filepath.Join(dir, "c.pem")}, 2, "--tls-cert and --tls-key"},
		{"missing htpasswd", []string{"--memory", "--htpasswd", filepath.Join(dir, "none")}, 2, "htpasswd"},
		{"unreadable certificate", []string{"--memory", "--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")}, 2, "TLS"},
		{"positional argument", []string{"--memory", "extra"}, 2, ""},
		{"unknown flag", []string{"--nope"}, 2, ""},
		{"address in use", []string{"--memory", "--addr", busy.Addr().String()}, 3, "address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"registry", "serve"}, tc.args...)
			if !contains(tc.args, "--addr") {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			code, stdout, stderr := sealRun(t, "", args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.msg) || strings.Contains(stderr, "listening on") || stdout != "" {
				t.Errorf("stdout %q, stderr %q; want an error mentioning %q", stdout, stderr, tc.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("a missing --htpasswd file was created: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRegistryServeSignals runs seal in a process of its own (this test
// binary, re-executed as TestRegistryServeHelperProcess) and stops it with
// a real signal: it must exit 0 with its port closed.
func TestRegistryServeSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			args, _ := json.Marshal([]string{"registry", "serve", "--addr", "127.0.0.1:0", "--root", t.TempDir()})
			cmd := exec.Command(os.Args[0], "-test.run=^TestRegistryServeHelperProcess$")
			cmd.Env = append(os.Environ(), "SEAL_REGISTRY_SERVE_HELPER="+string(args))
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			lines := linesOf(stderr)
			var addr string
			select {
			case l := <-lines:
				m := listeningLine.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("first stderr line %q, want listening on http://ADDR", l)
				}
				addr = m[2]
			case <-time.After(30 * time.Second):
				t.Fatal("no listening line within 30s")
			}
			pushRandomImage(t, addr+"/app:v1")

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for l := range lines {
				t.Errorf("stderr after %v: %q", sig, l)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if err != nil {
					t.Errorf("after %v: %v, want exit 0", sig, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15s after %v", sig)
			}
			assertClosed(t, addr)
		})
	}
}

// TestRegistryServeHelperProcess is seal's main for TestRegistryServeSignals;
// run normally, it does nothing.
func TestRegistryServeHelperProcess(t *testing.T) {
	raw := os.Getenv("SEAL_REGISTRY_SERVE_HELPER")
	if raw == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Exit(99)
	}
	os.Exit(Main(args, strings.NewReader(""), os.Stdout, os.Stderr))
}
