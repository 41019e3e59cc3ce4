// Package testenv holds the real parts seal's tests run against: registries
// over loopback, a test Sigstore, the pinned peer tools, builders of
// BuildKit-layout images. Nothing here is a mock of a thing seal integrates with.
package testenv

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

//go:embed tools.txt
var toolsTxt string

// ToolPackages maps a tool name to its pinned Go package@version.
func ToolPackages() map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(toolsTxt))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			m[f[0]] = f[1]
		}
	}
	return m
}

// RepoRoot is the directory holding go.mod, found from the working directory
// (a test's working directory is its package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

var toolMu sync.Mutex

// Tool returns the path of the pinned tool name, installing it into the
// project's cache first if it is not there. Installation is serialised across
// test processes with a file lock, since `go test ./...` runs packages in parallel.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := InstallTool(name)
	if err != nil {
		t.Fatalf("tool %s: %v", name, err)
	}
	return p
}

// InstallTool is Tool for callers without a testing.TB (benchmarks' harness).
func InstallTool(name string) (string, error) {
	pkg, ok := ToolPackages()[name]
	if !ok {
		return "", fmt.Errorf("unknown tool %q (see internal/testenv/tools.txt)", name)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	// The directory name carries the version, so a bump installs afresh.
	key := strings.NewReplacer("/", "_", "@", "_").Replace(pkg)
	bin := filepath.Join(root, ".cache", "tools", key)
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	toolMu.Lock()
	defer toolMu.Unlock()
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, ".cache", "tools", ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path, nil // another process installed it while we waited
	}
	cmd := exec.Command("go", "install", pkg)
	// Outside our module, so the tool builds with its own pinned dependencies.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", pkg, err, out)
	}
	return path, nil
}
