// Command installtools installs every pinned peer tool of
// internal/testenv/tools.txt into the project's cache, exactly as tests do on
// demand (testenv.InstallTool), so `make tools` and the tests share one cache.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/seal-dev/seal/internal/testenv"
)

func main() {
	pkgs := testenv.ToolPackages()
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	slices.Sort(names)
	failed := false
	for _, n := range names {
		p, err := testenv.InstallTool(n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "installtools: %s: %v\n", n, err)
			failed = true
			continue
		}
		fmt.Printf("%-16s %s\n", n, p)
	}
	if failed {
		os.Exit(1)
	}
}
