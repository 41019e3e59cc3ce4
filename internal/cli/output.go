package cli

import (
	"encoding/json"
	"io"

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
