package cli

import (
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/index"
)

func init() { register(newIndexCmd) }

func newIndexCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Build multi-platform image indexes",
	}
	cmd.AddCommand(newIndexCreateCmd(g))
	return cmd
}

func newIndexCreateCmd(g *Globals) *cobra.Command {
	var (
		annotations []string
		platforms   []string
		dryRun      bool
	)
	cmd := &cobra.Command{
		Use:   "create [--annotation K=V]… [--platform OS/ARCH[/VARIANT]]… [--dry-run] TARGET SOURCE…",
		Short: "Merge per-platform images (including BuildKit attestation indexes) into one index",
		Long: `Builds one flat multi-platform index from per-platform sources and pushes it to TARGET.
A SOURCE may be an image manifest or an index, in particular the per-platform index that
'docker buildx build --provenance/--sbom' pushes (image manifest + attestation manifest), which
'docker manifest create' refuses with "is a manifest list". Attestation manifests are kept and
still point at their platform manifest. Children are pushed first, the TARGET tag last.`,
		Example: `  seal index create ghcr.io/example/fleet:v0.1.0 \
    ghcr.io/example/fleet:v0.1.0-linux-amd64 ghcr.io/example/fleet:v0.1.0-linux-arm64`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
	}
	out := outputFlag(cmd)
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "annotation K=V on the index (repeatable)")
	cmd.Flags().StringArrayVar(&platforms, "platform", nil, "keep only this platform OS/ARCH[/VARIANT] and its attestations (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the index JSON and push nothing")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*out); err != nil {
			return err
		}
		c := g.client()
		var opts index.CreateOptions
		var err error
		if opts.Annotations, err = parseAnnotations(annotations); err != nil {
			return err
		}
		for _, p := range platforms {
			pl, err := index.ParsePlatform(p)
			if err != nil {
				return err
			}
			opts.Platforms = append(opts.Platforms, pl)
		}
		opts.DryRun = dryRun
		ref, err := c.ParseReference(args[0])
		if err != nil {
			return err
		}
		target, ok := ref.(name.Tag)
		if !ok {
			return fault.Inputf("TARGET %s: want a tag to write (host/repo:tag), not a digest", args[0])
		}
		var sources []name.Reference
		for _, s := range args[1:] {
			r, err := c.ParseReference(s)
			if err != nil {
				return err
			}
			sources = append(sources, r)
		}
		res, err := index.Create(cmd.Context(), c, target, sources, opts)
		if err != nil {
			return err
		}
		if dryRun && *out == "text" {
			_, err := fmt.Fprintf(g.Stdout, "%s\n", res.Raw)
			return err
		}
		return render(g.Stdout, *out, res, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, res.Reference)
			return err
		})
	}
	return cmd
}
