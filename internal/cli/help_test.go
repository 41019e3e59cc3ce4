package cli

import (
	"testing"

	"github.com/spf13/cobra"
)

// Every command a person runs has a --help with an example (issue: help text
// with an example for every command); groups (index, key, registry) only list
// their subcommands.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := NewRoot(&Globals{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || c.Hidden || c == root || c.Parent().Name() == "completion" || c.Name() == "help" {
			return
		}
		if c.Example == "" {
			t.Errorf("%q has no example in its --help", c.CommandPath())
		}
	}
	walk(root)
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, stdout, stderr := sealRun(t, "", "completion", shell)
		if code != 0 || len(stdout) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, %s", shell, code, len(stdout), stderr)
		}
	}
}
