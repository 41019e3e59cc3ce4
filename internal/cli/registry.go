package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/pkg/fault"
)

func init() { register(newRegistryCmd) }

func newRegistryCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run an OCI registry",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newRegistryServeCmd(g))
	return cmd
}

// shutdownGrace is how long requests in flight may take to finish once a
// signal asked the registry to stop.
const shutdownGrace = 10 * time.Second

func newRegistryServeCmd(g *Globals) *cobra.Command {
	var cfg registry.Config
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:5000] [--root DIR | --memory] [--htpasswd FILE] [--tls-cert F --tls-key F]",
		Short: "Run an OCI registry in-process (CNCF Distribution v3)",
		Long: `Runs an OCI registry in this process: CNCF Distribution v3, storing under --root
(default $XDG_DATA_HOME/seal/registry, else ~/.local/share/seal/registry) or in
memory. Prints "listening on http://ADDR" (https with TLS) to stderr once it accepts
connections, and stops cleanly on SIGINT or SIGTERM.

The registry has no OCI 1.1 referrers API: seal stores referrers under the
referrers tag (sha256-<hex>) there, as on every registry without it.`,
		Example: "  seal registry serve --memory\n  seal registry serve --addr 127.0.0.1:5443 --root /var/lib/seal --htpasswd htpasswd --tls-cert cert.pem --tls-key key.pem",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Memory && cmd.Flags().Changed("root") {
				return fault.Inputf("--root and --memory are exclusive")
			}
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return fault.Inputf("--tls-cert and --tls-key go together")
			}
			if !cfg.Memory && cfg.RootDir == "" {
				root, err := defaultRegistryRoot()
				if err != nil {
					return err
				}
				cfg.RootDir = root
			}
			ctx := cmd.Context()
			s, err := registry.Start(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stderr, "listening on %s\n", s.URL())
			// Main's context ends on SIGINT and SIGTERM.
			<-ctx.Done()
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			defer cancel()
			return s.Close(closeCtx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", registry.DefaultAddr, "address to listen on (port 0: any free port)")
	f.StringVar(&cfg.RootDir, "root", "", "storage directory (default $XDG_DATA_HOME/seal/registry)")
	f.BoolVar(&cfg.Memory, "memory", false, "keep everything in memory, lost on exit")
	f.StringVar(&cfg.HTPasswd, "htpasswd", "", "htpasswd file (bcrypt) requiring basic auth on every request")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate (PEM); serve HTTPS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key (PEM)")
	return cmd
}

// defaultRegistryRoot follows the XDG base directory spec, which says to
// ignore a relative XDG_DATA_HOME.
func defaultRegistryRoot() (string, error) {
	data := os.Getenv("XDG_DATA_HOME")
	if !filepath.IsAbs(data) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fault.Inputf("no --root given and no home directory: %v", err)
		}
		data = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(data, "seal", "registry"), nil
}
