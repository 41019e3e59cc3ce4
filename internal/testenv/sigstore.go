package testenv

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// Sigstore is a private Sigstore on loopback: the real Fulcio (ephemeral CA,
// no CT log) trusting one OIDC issuer of type github-workflow, and the real
// timestamp authority (in-memory signer). There is no Rekor: tests sign with
// signed timestamps and verify against TrustedRootPath.
type Sigstore struct {
	Issuer *OIDCIssuer
	// FulcioURL is Fulcio's base URL (for sign.FulcioOptions.BaseURL and
	// cosign --fulcio-url).
	FulcioURL string
	// TSAURL is the timestamp endpoint, …/api/v1/timestamp (for
	// sign.TimestampAuthorityOptions.URL and cosign --timestamp-server-url).
	TSAURL string
	// TrustedRootPath is a trusted_root.json naming Fulcio's CA and the TSA's
	// chain, with no transparency or CT logs.
	TrustedRootPath string
	// SigningConfigPath is a signing config v0.2 naming the Fulcio, the
	// OIDC issuer and the TSA, and no Rekor.
	SigningConfigPath string
	// FulcioChainPath and TSAChainPath hold the servers' chains in PEM, leaf
	// (TSA) or intermediates first, root last.
	FulcioChainPath string
	TSAChainPath    string
	// StartupTime is how long the start took, for reports.
	StartupTime time.Duration

	trustedRoot *root.TrustedRoot
	fulcioLog   string
	stops       []func()
}

// TrustedRoot is the trusted material written to TrustedRootPath, read back
// from that file.
func (s *Sigstore) TrustedRoot() root.TrustedMaterial { return s.trustedRoot }

// StartSigstore starts a Sigstore of its own for t and stops it when t ends.
// It takes 0.1–0.3s (both servers start in parallel); tests that only need
// some Sigstore can share one with SharedSigstore.
func StartSigstore(t testing.TB) *Sigstore {
	t.Helper()
	s, err := startSigstore(t.TempDir())
	if err != nil {
		t.Fatalf("start sigstore: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

var shared struct {
	mu  sync.Mutex
	s   *Sigstore
	err error
	dir string
}

// SharedSigstore returns the test binary's Sigstore, started by the first
// call. Stop it with StopSharedSigstore from TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testenv.StopSharedSigstore()
//		os.Exit(code)
//	}
//
// Without that, its servers are killed when the test binary exits (they
// carry a parent-death signal) and its temporary directory stays behind.
// A failed start is not retried: every later caller fails with the same
// error until StopSharedSigstore.
func SharedSigstore(t testing.TB) *Sigstore {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "seal-sigstore-")
		if shared.err == nil {
			shared.s, shared.err = startSigstore(shared.dir)
		}
	}
	if shared.err != nil {
		t.Fatalf("start shared sigstore: %v", shared.err)
	}
	return shared.s
}

// StopSharedSigstore stops the shared Sigstore if one was started; the next
// SharedSigstore starts a new one.
func StopSharedSigstore() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		shared.s.stop()
		shared.s = nil
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
		shared.dir = ""
	}
	shared.err = nil
}

func (s *Sigstore) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

const startTimeout = 60 * time.Second

func startSigstore(dir string) (*Sigstore, error) {
	begin := time.Now()
	s := &Sigstore{}
	started := false
	defer func() {
		if !started {
			s.stop()
		}
	}()

	iss, err := newOIDCIssuer()
	if err != nil {
		return nil, fmt.Errorf("oidc issuer: %w", err)
	}
	s.Issuer = iss
	s.stops = append(s.stops, iss.Close)

	// The two servers start in parallel: the start is mostly their
	// processes' initialisation.
	var (
		wg                sync.WaitGroup
		fulcioURL, tsaURL string
		fulcio            *process
		tsaStop           func()
		fulcioErr, tsaErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		fulcioURL, fulcio, fulcioErr = startFulcio(dir, iss.URL)
	}()
	go func() {
		defer wg.Done()
		tsaURL, tsaStop, tsaErr = startTSA(dir)
	}()
	wg.Wait()
	if fulcio != nil {
		s.stops = append(s.stops, fulcio.stop)
		s.fulcioLog = fulcio.log
	}
	if tsaStop != nil {
		s.stops = append(s.stops, tsaStop)
	}
	if err := errors.Join(fulcioErr, tsaErr); err != nil {
		return nil, err
	}
	s.FulcioURL = fulcioURL
	s.TSAURL = tsaURL + "/api/v1/timestamp"

	fulcioChain, err := fetchFulcioChain(fulcioURL)
	if err != nil {
		return nil, err
	}
	tsaChain, err := fetchTSAChain(tsaURL)
	if err != nil {
		return nil, err
	}
	if err := s.writeTrust(dir, fulcioChain, tsaChain); err != nil {
		return nil, err
	}
	s.StartupTime = time.Since(begin)
	started = true
	return s, nil
}

// writeTrust writes the trusted root, the signing config and the chains.
func (s *Sigstore) writeTrust(dir string, fulcioChain, tsaChain []*x509.Certificate) error {
	if len(fulcioChain) < 1 || len(tsaChain) < 2 {
		return fmt.Errorf("short chains: fulcio %d certificates, tsa %d", len(fulcioChain), len(tsaChain))
	}
	fulcioRoot := fulcioChain[len(fulcioChain)-1]
	tsaRoot := tsaChain[len(tsaChain)-1]
	ca := &root.FulcioCertificateAuthority{
		Root:                fulcioRoot,
		Intermediates:       fulcioChain[:len(fulcioChain)-1],
		ValidityPeriodStart: fulcioRoot.NotBefore,
		URI:                 s.FulcioURL,
	}
	tsa := &root.SigstoreTimestampingAuthority{
		Root:                tsaRoot,
		Intermediates:       tsaChain[1 : len(tsaChain)-1],
		Leaf:                tsaChain[0],
		ValidityPeriodStart: tsaRoot.NotBefore,
		URI:                 s.TSAURL,
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{ca}, nil, []root.TimestampingAuthority{tsa}, nil)
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	trJSON, err := tr.MarshalJSON()
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	// Read back what was written, so that tests using TrustedRoot() trust
	// exactly what tools reading the file trust.
	if s.trustedRoot, err = root.NewTrustedRootFromJSON(trJSON); err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}

	since := time.Now().Add(-time.Minute)
	service := func(url string) root.Service {
		return root.Service{URL: url, MajorAPIVersion: 1, ValidityPeriodStart: since, Operator: "seal-testenv"}
	}
	sc, err := root.NewSigningConfig(root.SigningConfigMediaType02,
		[]root.Service{service(s.FulcioURL)},
		[]root.Service{service(s.Issuer.URL)},
		nil, root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY},
		[]root.Service{service(s.TSAURL)}, root.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY})
	if err != nil {
		return fmt.Errorf("signing config: %w", err)
	}
	scJSON, err := sc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("signing config: %w", err)
	}

	s.TrustedRootPath = filepath.Join(dir, "trusted_root.json")
	s.SigningConfigPath = filepath.Join(dir, "signing_config.json")
	s.FulcioChainPath = filepath.Join(dir, "fulcio-chain.pem")
	s.TSAChainPath = filepath.Join(dir, "tsa-chain.pem")
	for path, data := range map[string][]byte{
		s.TrustedRootPath:   trJSON,
		s.SigningConfigPath: scJSON,
		s.FulcioChainPath:   pemChain(fulcioChain),
		s.TSAChainPath:      pemChain(tsaChain),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func pemChain(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// startFulcio runs Fulcio with its HTTP and gRPC APIs on loopback ports.
// Not on one port ("duplex" mode): there v1.8.8 panics registering its
// gRPC metrics twice. The legacy gRPC server's Unix socket gets a name of
// its own (the default is one abstract name per machine). The Prometheus
// listener has no host setting in v1.8.8 (it listens on ":port", all
// interfaces), so it gets a free port; nothing is ever sent to it.
func startFulcio(dir, issuerURL string) (string, *process, error) {
	bin, err := InstallTool("fulcio")
	if err != nil {
		return "", nil, err
	}
	config, err := json.Marshal(map[string]any{
		"OIDCIssuers": map[string]any{
			issuerURL: map[string]string{"IssuerURL": issuerURL, "ClientID": OIDCAudience, "Type": "github-workflow"},
		},
	})
	if err != nil {
		return "", nil, err
	}
	// Fulcio falls back to its public issuers when the file is missing.
	configPath := filepath.Join(dir, "fulcio-config.json")
	if err := os.WriteFile(configPath, config, 0o644); err != nil {
		return "", nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(3)
		if err != nil {
			return "", nil, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		p, err := launch(dir, "fulcio", bin, []string{"serve",
			// No CT log: certificates carry no SCT, and nothing but
			// Fulcio itself needs to run.
			"--ca", "ephemeralca", "--ct-log-url", "", "--config-path", configPath,
			"--host", "127.0.0.1", "--port", fmt.Sprint(ports[0]),
			"--grpc-host", "127.0.0.1", "--grpc-port", fmt.Sprint(ports[1]),
			"--metrics-port", fmt.Sprint(ports[2]),
			"--legacy-unix-domain-socket", fmt.Sprintf("@seal-fulcio-%d-%d", os.Getpid(), ports[0]),
			"--log_type", "prod",
		}, false)
		if err != nil {
			return "", nil, err
		}
		if err := p.waitReady(url + "/api/v2/trustBundle"); err != nil {
			p.stop()
			lastErr = err
			if strings.Contains(err.Error(), "address already in use") {
				continue // another process took a port between our probe and Fulcio's bind
			}
			return "", nil, err
		}
		return url, p, nil
	}
	return "", nil, lastErr
}

// startTSA runs the timestamp authority. Its Prometheus listener is fixed
// at ":2112" in v2.1.3, so two cannot run at once on one network, and
// `go test ./...` runs test binaries in parallel. So it runs in a network
// namespace of its own, serving its API on a Unix socket that a forwarder
// in this process exposes on 127.0.0.1. Where namespaces are refused, it
// runs on the host's network, one at a time machine-wide (a file lock on
// port 2112), and its metrics listener is on all interfaces.
func startTSA(dir string) (string, func(), error) {
	bin, err := InstallTool("timestamp-server")
	if err != nil {
		return "", nil, err
	}
	args := []string{"serve", "--timestamp-signer", "memory",
		// Without it the server queries public NTP servers.
		"--disable-ntp-monitoring", "--log-type", "prod"}

	// A short directory of its own: a socket path is limited to 107 bytes.
	sockDir, err := os.MkdirTemp("", "seal-tsa-")
	if err != nil {
		return "", nil, err
	}
	sock := filepath.Join(sockDir, "tsa.sock")
	p, err := launch(dir, "timestamp-server", bin,
		append(args, "--scheme", "unix", "--socket-path", sock), true)
	if err == nil {
		fwd, err := forwardToUnix(sock)
		if err != nil {
			p.stop()
			os.RemoveAll(sockDir)
			return "", nil, err
		}
		stop := func() { fwd.close(); p.stop(); os.RemoveAll(sockDir) }
		if err := p.waitReady(fwd.url + "/api/v1/timestamp/certchain"); err != nil {
			stop()
			return "", nil, err
		}
		return fwd.url, stop, nil
	}
	os.RemoveAll(sockDir)
	if !errors.Is(err, errNoNamespace) {
		return "", nil, err
	}
	return startTSAOnHost(dir, bin, args)
}

func startTSAOnHost(dir, bin string, args []string) (string, func(), error) {
	unlock, err := lockFile(filepath.Join(os.TempDir(), "seal-testenv-tsa-2112.lock"), startTimeout)
	if err != nil {
		return "", nil, fmt.Errorf("timestamp-server: waiting for port 2112: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			break
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		p, err := launch(dir, "timestamp-server", bin,
			append(args, "--scheme", "http", "--host", "127.0.0.1", "--port", fmt.Sprint(ports[0])), false)
		if err != nil {
			lastErr = err
			break
		}
		if err := p.waitReady(url + "/api/v1/timestamp/certchain"); err != nil {
			p.stop()
			lastErr = err
			if strings.Contains(err.Error(), "address already in use") && !strings.Contains(err.Error(), ":2112") {
				continue
			}
			break
		}
		return url, func() { p.stop(); unlock() }, nil
	}
	unlock()
	return "", nil, lastErr
}

var errNoNamespace = errors.New("network namespaces unavailable")

// process is a server started by launch.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

func launch(dir, name, bin string, args []string, isolated bool) (*process, error) {
	logf, err := os.CreateTemp(dir, name+"-*.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if isolated && !isolateNetwork(cmd) {
		return nil, errNoNamespace
	}
	if err := cmd.Start(); err != nil {
		if isolated && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES)) {
			return nil, fmt.Errorf("%w: %v", errNoNamespace, err)
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logf.Name(), exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// waitReady polls url until it answers 200, the process exits or the start
// times out; errors carry the end of the server's log.
func (p *process) waitReady(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %v:\n%s", p.name, url, startTimeout, p.logTail())
		case <-tick.C:
		}
	}
}

func (p *process) stop() {
	select {
	case <-p.exited:
	default:
		// Killed rather than terminated: the TSA's graceful shutdown waits
		// up to 15s, and nothing here has state worth saving.
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct ports that were free on 127.0.0.1; they are
// held together so that they differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// forwarder relays TCP connections on 127.0.0.1 to a Unix socket, byte for
// byte.
type forwarder struct {
	url   string
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func forwardToUnix(sock string) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{url: "http://" + ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve(sock)
	return f, nil
}

func (f *forwarder) serve(sock string) {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			u, err := net.Dial("unix", sock)
			if err != nil {
				c.Close()
				return
			}
			if !f.track(c, u) {
				return
			}
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); done <- struct{}{} }()
			go func() { io.Copy(c, u); done <- struct{}{} }()
			<-done
			c.Close()
			u.Close()
			<-done
			f.untrack(c, u)
		}()
	}
}

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil { // closed
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		delete(f.conns, c)
	}
}

func (f *forwarder) close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// lockFile takes an exclusive lock on path, waiting up to timeout.
func lockFile(path string, timeout time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchFulcioChain reads Fulcio's CA chain from its trust bundle.
func fetchFulcioChain(base string) ([]*x509.Certificate, error) {
	body, err := get(base + "/api/v2/trustBundle")
	if err != nil {
		return nil, err
	}
	var bundle struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(body, &bundle); err != nil {
		return nil, fmt.Errorf("fulcio trust bundle: %w", err)
	}
	if len(bundle.Chains) != 1 {
		return nil, fmt.Errorf("fulcio trust bundle: %d chains, want 1", len(bundle.Chains))
	}
	return parsePEMChain([]byte(strings.Join(bundle.Chains[0].Certificates, "\n")))
}

// fetchTSAChain reads the TSA's chain, leaf first.
func fetchTSAChain(base string) ([]*x509.Certificate, error) {
	body, err := get(base + "/api/v1/timestamp/certchain")
	if err != nil {
		return nil, err
	}
	return parsePEMChain(body)
}

func get(url string) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return body, nil
}

func parsePEMChain(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates in PEM")
	}
	return certs, nil
}
