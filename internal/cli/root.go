// Package cli is seal's command layer: each file holds one command that
// parses flags, makes one call into pkg/, and renders the result. Logic that
// another program could want lives in pkg/, never here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// Globals are the flags every command shares.
type Globals struct {
	// Insecure lists registry hosts (HOST[:PORT]) reached over plain HTTP
	// besides the loopback hosts, which always are.
	Insecure []string
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
}

// commands holds the constructors of the top-level commands. Each command's
// file adds itself in an init function, so adding a command touches one file.
var commands []func(*Globals) *cobra.Command

func register(newCmd func(*Globals) *cobra.Command) { commands = append(commands, newCmd) }

// NewRoot builds the whole command tree.
func NewRoot(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "seal",
		Short:         "Integrity for container image releases: index, sign, attest, verify, promote",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(g.Stdin)
	root.SetOut(g.Stdout)
	root.SetErr(g.Stderr)
	root.PersistentFlags().StringArrayVar(&g.Insecure, "insecure-registry", nil,
		"registry HOST[:PORT] to reach over plain HTTP (repeatable; loopback hosts always are)")
	// Flag errors are usage errors: exit 2, as for any other bad input.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fault.Wrap(fault.Input, err)
	})
	for _, newCmd := range commands {
		root.AddCommand(newCmd(g))
	}
	return root
}

// Main runs seal with args and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &Globals{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root := NewRoot(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "seal: %s\n", oneLine(err))
	return exitCode(err)
}

func exitCode(err error) int {
	if k := fault.KindOf(err); k != fault.Unknown {
		return k.ExitCode()
	}
	// cobra reports unknown commands and argument-count errors without a kind.
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "arg(s)") ||
		strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "required flag") {
		return fault.Input.ExitCode()
	}
	if errors.Is(err, context.Canceled) {
		return fault.Operational.ExitCode()
	}
	return fault.Operational.ExitCode()
}

// oneLine keeps an error on one line, as CLI.md promises: registry errors
// sometimes carry multi-line bodies.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// usageArgs wraps a cobra positional-args validator so that its errors are
// input errors (exit 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		return fault.Wrap(fault.Input, v(cmd, args))
	}
}

// client is the one registry client of a command: one transport and token
// cache shared by every worker.
func (g *Globals) client() *oci.Client {
	return oci.NewClient(oci.WithInsecure(g.Insecure...))
}

// parseAnnotations turns repeated K=V flags into a map (nil when there are none).
func parseAnnotations(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fault.Inputf("--annotation %q: want KEY=VALUE", kv)
		}
		m[k] = v
	}
	return m, nil
}
