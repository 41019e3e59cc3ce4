package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/fault"
)

// outputFlag adds --output text|json to cmd and returns where it lands.
func outputFlag(cmd *cobra.Command) *string {
	var out string
	cmd.Flags().StringVarP(&out, "output", "o", "text", "output format: text or json")
	return &out
}

// render writes v as one JSON document when format is json, else calls text.
func render(w io.Writer, format string, v any, text func(io.Writer) error) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		return text(w)
	default:
		return fault.Inputf("--output %q: want text or json", format)
	}
}

// checkOutput validates --output before any work is done, so a typo costs nothing.
func checkOutput(format string) error {
	if format != "text" && format != "json" && format != "" {
		return fault.Inputf("--output %q: want text or json", format)
	}
	return nil
}

// finishBatch ends a batch command whose results are already rendered: with
// text output each failure also goes to stderr as one line (json carries them
// in the document), and the command fails with the batch's kind of error.
func finishBatch(g *Globals, format string, errs []string, total int, noun string, err error) error {
	if err == nil {
		return nil
	}
	if format == "text" {
		for _, e := range errs {
			fmt.Fprintf(g.Stderr, "seal: %s\n", strings.Join(strings.Fields(e), " "))
		}
	}
	return fault.Wrap(fault.KindOf(err), fmt.Errorf("%d of %d %s failed", len(errs), total, noun))
}

// failures lists the errors of a batch's results (those with one).
func failures[T any](results []T, errOf func(T) string) []string {
	var errs []string
	for _, r := range results {
		if e := errOf(r); e != "" {
			errs = append(errs, e)
		}
	}
	return errs
}
