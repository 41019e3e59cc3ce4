// Package registry runs an OCI registry in-process: CNCF Distribution v3 used
// as a library (its HTTP handlers and storage drivers), served on a listener
// of our own. It is what lets seal run with no other infrastructure, and what
// tests use as a registry without the OCI 1.1 referrers API.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	// Distribution finds its auth and storage implementations in registries
	// filled by these packages' init functions.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/seal-dev/seal/pkg/fault"
)

// DefaultAddr is where the registry listens unless told otherwise.
const DefaultAddr = "127.0.0.1:5000"

// Config says where and how to serve.
type Config struct {
	// Addr is the TCP address to listen on (default DefaultAddr). A port of 0
	// lets the OS choose; Server.Addr reports the real one.
	Addr string
	// RootDir holds the filesystem storage. Exactly one of RootDir and Memory.
	RootDir string
	// Memory keeps everything in memory; it is lost on Close.
	Memory bool
	// HTPasswd is an htpasswd file (bcrypt entries). When set, every request
	// needs HTTP basic auth; the file is re-read when it changes.
	HTPasswd string
	// TLSCert and TLSKey are PEM files; both or neither. When set, the
	// registry serves HTTPS only.
	TLSCert, TLSKey string
}

// Server is a running registry.
type Server struct {
	addr   net.Addr
	tls    bool
	srv    *http.Server
	app    *handlers.App
	served chan error

	closeOnce sync.Once
	closeErr  error
}

// quietLogrus silences Distribution, which logs through logrus's process-wide
// standard logger (its context logger package is internal, so there is no
// per-instance logger to hand it). A library must not print; a client sees
// every failure as an HTTP error anyway.
var quietLogrus sync.Once

// Start listens on cfg.Addr and serves the registry until Close. It returns
// once the listener is bound, so connections are accepted from then on. ctx
// bounds the start only.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	dcfg, tlsConf, err := distributionConfig(cfg)
	if err != nil {
		return nil, err
	}
	quietLogrus.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.PanicLevel)
	})

	captureID, err := newCaptureID()
	if err != nil {
		return nil, err
	}
	dcfg.Middleware = map[string][]configuration.Middleware{
		"storage": {{Name: captureMiddleware, Options: configuration.Parameters{"id": captureID}}},
	}
	// NewApp reports bad configuration by panicking; turn that into an error.
	app, err := newApp(dcfg)
	if err != nil {
		captured.Delete(captureID)
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = app.Shutdown()
		}
	}()
	driver, ok := takeCaptured(captureID)
	if !ok {
		return nil, fmt.Errorf("registry: storage driver not captured")
	}
	var access auth.AccessController
	if opts, ok := dcfg.Auth["htpasswd"]; ok {
		if access, err = auth.GetAccessController("htpasswd", opts); err != nil {
			return nil, fault.Wrap(fault.Input, fmt.Errorf("registry: htpasswd: %w", err))
		}
	}
	// The handler outlives the caller's context, as the app does.
	handler, err := newFastReads(context.Background(), app, driver, access)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fault.Wrap(fault.Operational, fmt.Errorf("registry: %w", err))
	}
	s := &Server{
		addr: ln.Addr(),
		tls:  tlsConf != nil,
		app:  app,
		srv: &http.Server{
			Handler:   handler,
			TLSConfig: tlsConf,
			// Bounds slow clients holding connections; bodies (blobs) may
			// legitimately take long, so no read/write timeout.
			ReadHeaderTimeout: 30 * time.Second,
			// net/http logs TLS handshake and accept errors; keep them quiet too.
			ErrorLog: log.New(io.Discard, "", 0),
		},
		served: make(chan error, 1),
	}
	fresh := &freshConns{conns: map[net.Conn]struct{}{}}
	s.srv.ConnState = fresh.track
	s.srv.RegisterOnShutdown(fresh.shutdown)
	go func() {
		var err error
		if s.tls {
			// Certificates are already in TLSConfig; ServeTLS adds h2.
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.served <- err
	}()
	return s, nil
}

func newApp(dcfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fault.Wrap(fault.Input, fmt.Errorf("registry: configure: %v", r))
		}
	}()
	// The app outlives the caller's context; Close ends it.
	return handlers.NewApp(context.Background(), dcfg), nil
}

// distributionConfig translates cfg into Distribution's configuration,
// checking the files it names first: Distribution would otherwise panic, or,
// for a missing htpasswd file, create one with a random password and log it.
func distributionConfig(cfg Config) (*configuration.Configuration, *tls.Config, error) {
	var c configuration.Configuration
	c.Version = configuration.MajorMinorVersion(0, 1)
	c.Log.AccessLog.Disabled = true
	c.Log.Level = "error"

	storage := configuration.Storage{
		// Copy and promotion may replace or remove what they wrote.
		"delete": configuration.Parameters{"enabled": true},
	}
	switch {
	case cfg.Memory && cfg.RootDir != "":
		return nil, nil, fault.Inputf("registry: a root directory and in-memory storage are exclusive")
	case cfg.Memory:
		storage["inmemory"] = configuration.Parameters{}
		// Nothing outlives the process, so there is nothing to purge.
		storage["maintenance"] = configuration.Parameters{
			"uploadpurging": map[any]any{"enabled": false},
		}
	case cfg.RootDir != "":
		if err := os.MkdirAll(cfg.RootDir, 0o750); err != nil {
			return nil, nil, fault.Wrap(fault.Input, fmt.Errorf("registry: root directory: %w", err))
		}
		storage["filesystem"] = configuration.Parameters{"rootdirectory": cfg.RootDir}
	default:
		return nil, nil, fault.Inputf("registry: no storage: set a root directory or in-memory storage")
	}
	c.Storage = storage

	if cfg.HTPasswd != "" {
		f, err := os.Open(cfg.HTPasswd)
		if err != nil {
			return nil, nil, fault.Wrap(fault.Input, fmt.Errorf("registry: htpasswd: %w", err))
		}
		f.Close()
		c.Auth = configuration.Auth{"htpasswd": configuration.Parameters{
			"realm": "seal-registry",
			"path":  cfg.HTPasswd,
		}}
	}

	// The secret signs upload state handed to clients; a fresh one per
	// process is right for a single instance.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, err
	}
	c.HTTP.Secret = hex.EncodeToString(secret)

	var tlsConf *tls.Config
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "":
	case cfg.TLSCert == "" || cfg.TLSKey == "":
		return nil, nil, fault.Inputf("registry: TLS needs both a certificate and a key")
	default:
		pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, nil, fault.Wrap(fault.Input, fmt.Errorf("registry: TLS: %w", err))
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	return &c, tlsConf, nil
}

// freshConns closes, on shutdown, the connections that have not sent a
// request yet. http.Server.Shutdown waits 5 seconds for those, and clients
// open them routinely (go-containerregistry's ping races https against http;
// transports dial ahead), so without this every Close would take 5 seconds.
type freshConns struct {
	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case st == http.StateNew && f.closing:
		c.Close()
	case st == http.StateNew:
		f.conns[c] = struct{}{}
	default:
		delete(f.conns, c)
	}
}

func (f *freshConns) shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing = true
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

// Addr is the address the registry listens on, as HOST:PORT.
func (s *Server) Addr() string { return s.addr.String() }

// URL is the registry's base URL (http:// or https://, no path).
func (s *Server) URL() string {
	if s.tls {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// Close stops accepting connections, waits for requests in flight until ctx
// ends (then cuts them), and releases the storage. It is safe to call twice.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		err = errors.Join(err, <-s.served, s.app.Shutdown())
		if err != nil {
			s.closeErr = fmt.Errorf("registry %s: close: %w", s.Addr(), err)
		}
	})
	return s.closeErr
}
