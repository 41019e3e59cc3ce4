// Package benchenv holds what the harnesses under bench/ share: seal built
// from this tree, in-process registries on 127.0.0.1, a counting reverse
// proxy in front of them, peer tools run with a private HOME, tables.
package benchenv

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/internal/testenv"
)

// Workspace is what every harness starts from: a temporary directory, seal
// built from this tree, the peer tools it compares with, and a private HOME
// for them (so no one's Docker config or cosign cache takes part).
type Workspace struct {
	Dir   string
	Seal  string
	Home  string
	Tools map[string]string // name → path, pinned in internal/testenv/tools.txt
}

// Setup makes a Workspace with the named peer tools installed.
func Setup(name string, tools ...string) (*Workspace, error) {
	dir, err := os.MkdirTemp("", "seal-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	w := &Workspace{Dir: dir, Home: filepath.Join(dir, "home"), Tools: map[string]string{}}
	if err := w.setup(tools); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Workspace) setup(tools []string) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	if w.Seal, err = BuildSeal(root, w.Dir); err != nil {
		return err
	}
	for _, t := range tools {
		if w.Tools[t], err = testenv.InstallTool(t); err != nil {
			return err
		}
	}
	return os.MkdirAll(w.Home, 0o700)
}

// Close removes the workspace.
func (w *Workspace) Close() { os.RemoveAll(w.Dir) }

// BuildSeal builds ./cmd/seal of the module at root into dir and returns the
// binary's path.
func BuildSeal(root, dir string) (string, error) {
	seal := filepath.Join(dir, "seal")
	build := exec.Command("go", "build", "-o", seal, "./cmd/seal")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build seal: %v\n%s", err, out)
	}
	return seal, nil
}

// Kind is a kind of registry.
type Kind string

const (
	// API is go-containerregistry's registry, with the OCI referrers API.
	API Kind = "api"
	// Fallback is CNCF Distribution v3 (seal's embedded registry), without
	// the referrers API: referrers live in the fallback tag.
	Fallback Kind = "fallback"
)

// Name describes the registry kind for a report.
func (k Kind) Name() string {
	if k == API {
		return "go-containerregistry registry, referrers API"
	}
	return "CNCF Distribution v3, no referrers API"
}

// StartRegistry starts an in-process registry of kind on 127.0.0.1 and
// returns its HOST:PORT and how to stop it.
func StartRegistry(kind Kind) (string, func(), error) {
	if kind == Fallback {
		s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", Memory: true})
		if err != nil {
			return "", nil, err
		}
		return s.Addr(), func() { _ = s.Close(context.Background()) }, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: ggcrregistry.New(ggcrregistry.WithReferrersSupport(true),
		ggcrregistry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// ToolCmd runs bin with a private HOME (and Docker config, and cosign's
// TUF cache under it), so that no tool reads the user's settings or
// credentials; env is added to that environment.
func ToolCmd(bin, home string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"TUF_ROOT=" + filepath.Join(home, ".sigstore"),
	}, env...)
	cmd.Dir = home
	return cmd
}

// KiB formats a byte count.
func KiB(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// Table prints right-aligned columns.
type Table struct{ w *tabwriter.Writer }

// NewTable starts a table on w with a header row.
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{w: tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)}
	t.Row(header...)
	return t
}

// Row adds a row.
func (t *Table) Row(cells ...string) {
	for _, c := range cells {
		fmt.Fprint(t.w, c, "\t")
	}
	fmt.Fprintln(t.w)
}

// Flush writes the table out.
func (t *Table) Flush() { _ = t.w.Flush() }
