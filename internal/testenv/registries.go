package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/seal-dev/seal/internal/registry"
)

// Registry is a real registry on 127.0.0.1 for the length of one test.
type Registry struct {
	// Name says which implementation it is: "distribution", "ggcr" or "external".
	Name string
	// Host is "127.0.0.1:PORT", the registry part of a reference.
	Host string
	// ReferrersAPI tells whether the registry serves the OCI 1.1 referrers
	// API; without it, clients must use the referrers tag fallback.
	ReferrersAPI bool

	// The external registry only: basic-auth credentials (also in the Docker
	// config under DockerConfigDir) and the CA its TLS certificate chains to.
	Username, Password string
	CACertFile         string
	DockerConfigDir    string

	transport http.RoundTripper
	keychain  authn.Keychain
}

// Transport reaches the registry: it trusts the test CA for the external
// registry, and is a plain transport for the others.
func (r *Registry) Transport() http.RoundTripper { return r.transport }

// Keychain holds the registry's credentials: those of DockerConfigDir for
// the external registry, anonymous for the others.
func (r *Registry) Keychain() authn.Keychain { return r.keychain }

// Ref is a reference in this registry: r.Ref("app:v1") is "127.0.0.1:PORT/app:v1".
func (r *Registry) Ref(repoAndTag string) string { return r.Host + "/" + repoAndTag }

// RemoteOptions are the go-containerregistry options to talk to the registry.
func (r *Registry) RemoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(r.transport),
		remote.WithAuthFromKeychain(r.keychain),
	}
}

// Registries are the in-process registries, one without and one with the
// referrers API, for table-driven tests. The external one is slower to start;
// tests that need auth or TLS ask for it with External.
func Registries(t testing.TB) []*Registry {
	t.Helper()
	return []*Registry{Distribution(t), GGCR(t)}
}

// Distribution is seal's embedded registry (CNCF Distribution v3, in
// memory): no referrers API, so the referrers tag fallback is exercised.
func Distribution(t testing.TB) *Registry {
	t.Helper()
	s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", Memory: true})
	if err != nil {
		t.Fatalf("start distribution registry: %v", err)
	}
	tr := plainTransport(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close distribution registry: %v", err)
		}
	})
	return &Registry{Name: "distribution", Host: s.Addr(), transport: tr, keychain: anonymousKeychain{}}
}

// GGCR is go-containerregistry's in-memory registry with the OCI 1.1
// referrers API on.
func GGCR(t testing.TB) *Registry {
	t.Helper()
	h := ggcrregistry.New(
		ggcrregistry.WithReferrersSupport(true),
		ggcrregistry.Logger(log.New(io.Discard, "", 0)),
	)
	// httptest binds 127.0.0.1 with an OS-chosen port.
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	return &Registry{Name: "ggcr", Host: host, ReferrersAPI: true, transport: plainTransport(t), keychain: anonymousKeychain{}}
}

func plainTransport(t testing.TB) http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

type anonymousKeychain struct{}

func (anonymousKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.Anonymous, nil
}

// dockerConfigKeychain reads credentials from one Docker config directory,
// unlike authn.DefaultKeychain, which prefers ~/.docker over DOCKER_CONFIG.
type dockerConfigKeychain struct{ dir string }

func (k dockerConfigKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := config.Load(k.dir)
	if err != nil {
		return nil, fmt.Errorf("docker config %s: %w", k.dir, err)
	}
	ac, err := cf.GetAuthConfig(target.RegistryStr())
	if err != nil {
		return nil, fmt.Errorf("docker config %s: credentials for %s: %w", k.dir, target.RegistryStr(), err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}), nil
}

// DockerConfigKeychain is a keychain over the Docker config in dir
// (config.json and its credential helpers), for tests that hold several.
func DockerConfigKeychain(dir string) authn.Keychain { return dockerConfigKeychain{dir: dir} }

var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// External is the Distribution v3.1.2 registry binary run as its own
// process, with TLS (a test CA) and htpasswd basic auth, storing under a
// temporary directory. Its logs are printed only if the test fails.
func External(t testing.TB) *Registry {
	t.Helper()
	bin := Tool(t, "registry")
	dir := t.TempDir()

	tlsFiles := NewLoopbackTLS(t, dir)
	user, pass := "seal", randomHex(t, 16)
	htpasswd := filepath.Join(dir, "htpasswd")
	WriteHTPasswd(t, htpasswd, user, pass)

	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: %q
  tls:
    certificate: %q
    key: %q
auth:
  htpasswd:
    realm: seal-test
    path: %q
`, filepath.Join(dir, "storage"), randomHex(t, 32), tlsFiles.CertFile, tlsFiles.KeyFile, htpasswd)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	logFile := filepath.Join(dir, "registry.log")
	logs, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	// A minimal environment: no REGISTRY_* overrides from the caller, and no
	// OpenTelemetry exporter dialing out.
	cmd.Env = []string{
		"HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none",
	}
	dieWithParent(cmd) // no registry outlives a killed test binary
	// Dumped after the process ends (cleanups run last-in first-out).
	t.Cleanup(func() {
		logs.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				t.Logf("external registry log (%s):\n%s", logFile, b)
			}
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	host := waitForLog(t, logFile, exited)
	tr := tlsFiles.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	waitForUnauthorized(t, "https://"+host+"/v2/", tr, exited)

	dockerDir := filepath.Join(dir, "docker")
	WriteDockerConfig(t, dockerDir, host, user, pass)
	return &Registry{
		Name: "external", Host: host,
		Username: user, Password: pass,
		CACertFile: tlsFiles.CACertFile, DockerConfigDir: dockerDir,
		transport: tr, keychain: dockerConfigKeychain{dir: dockerDir},
	}
}

// waitForLog waits for the registry to log the address it bound, which is
// the only way to learn the port the OS chose for it.
func waitForLog(t testing.TB, logFile string, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logFile)
		if m := listeningRE.FindSubmatch(b); m != nil {
			return string(m[1])
		}
		select {
		case <-exited:
			t.Fatalf("external registry exited before listening")
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("external registry did not report its address within 30s")
	return ""
}

func waitForUnauthorized(t testing.TB, url string, tr http.RoundTripper, exited <-chan struct{}) {
	t.Helper()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			t.Fatalf("external registry exited (last probe: %s)", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("external registry did not answer %s with 401 within 30s (last: %s)", url, last)
}

// WriteHTPasswd writes an htpasswd file with one bcrypt entry. The cost is
// bcrypt's minimum: the registry checks the password on every request.
func WriteHTPasswd(t testing.TB, path, user, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteDockerConfig writes dir/config.json with basic-auth credentials for host.
func WriteDockerConfig(t testing.TB, dir, host, user, password string) {
	t.Helper()
	doc := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
	}}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// LoopbackTLS is a fresh CA and a server certificate it issued for
// 127.0.0.1, as PEM files.
type LoopbackTLS struct {
	CACertFile, CertFile, KeyFile string
	Pool                          *x509.CertPool
}

// Transport trusts only the CA.
func (l *LoopbackTLS) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: l.Pool, MinVersion: tls.VersionTLS12}
	return tr
}

// NewLoopbackTLS writes ca.pem, server.pem and server-key.pem into dir.
func NewLoopbackTLS(t testing.TB, dir string) *LoopbackTLS {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "seal test registry CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &LoopbackTLS{
		CACertFile: filepath.Join(dir, "ca.pem"),
		CertFile:   filepath.Join(dir, "server.pem"),
		KeyFile:    filepath.Join(dir, "server-key.pem"),
		Pool:       x509.NewCertPool(),
	}
	l.Pool.AddCert(caCert)
	writePEM(t, l.CACertFile, "CERTIFICATE", caDER, 0o644)
	writePEM(t, l.CertFile, "CERTIFICATE", der, 0o644)
	writePEM(t, l.KeyFile, "PRIVATE KEY", keyDER, 0o600)
	return l
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
