// Command seal signs, attests, verifies and promotes container image releases.
package main

import (
	"os"

	"github.com/seal-dev/seal/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
