package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/index"
)

func init() { register(newInspectCmd) }

func newInspectCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect [--output text|json] IMAGE",
		Short: "Show an image's platforms, attestation manifests, signatures and attestations",
		Long: `Shows the tree under IMAGE: index → platform manifests → BuildKit attestation manifests
(with the predicate types of their layers) → what is attached to each manifest (Sigstore bundle
referrers with their predicate type, cosign legacy .sig/.att/.sbom tags).`,
		Example: "  seal inspect ghcr.io/example/fleet:v0.1.0\n  seal inspect -o json ghcr.io/example/fleet@sha256:…",
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	out := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(*out); err != nil {
			return err
		}
		c := g.client()
		ref, err := c.ParseReference(args[0])
		if err != nil {
			return err
		}
		res, err := index.Inspect(cmd.Context(), c, ref)
		if err != nil {
			return err
		}
		return render(g.Stdout, *out, res, func(w io.Writer) error {
			return renderTree(w, res)
		})
	}
	return cmd
}

func renderTree(w io.Writer, res *index.Inspected) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", res.Reference)
	fmt.Fprintf(&b, "%s %s\n", res.Digest, describeNode(res.Tree))
	writeChildren(&b, res.Tree, "")
	_, err := io.WriteString(w, b.String())
	return err
}

// describeNode is the one-line summary of a node after its digest.
func describeNode(t *index.Tree) string {
	switch t.Kind {
	case index.KindIndex:
		return fmt.Sprintf("index (%s, %d manifests)", t.MediaType, len(t.Manifests))
	case index.KindImage:
		return "image " + t.Platform
	case index.KindAttestation:
		return "attestation manifest (unsigned, from the build): " + strings.Join(t.PredicateTypes, ", ")
	}
	if t.ArtifactType != "" {
		return "artifact " + t.ArtifactType
	}
	return "artifact " + t.MediaType
}

func writeChildren(b *strings.Builder, t *index.Tree, prefix string) {
	type line struct {
		text string
		node *index.Tree
	}
	var lines []line
	for _, m := range t.Manifests {
		lines = append(lines, line{fmt.Sprintf("%s %s", m.Digest, describeNode(m)), m})
	}
	for _, a := range t.Attestations {
		lines = append(lines, line{fmt.Sprintf("%s %s", a.Digest, describeNode(a)), a})
	}
	for _, r := range t.Referrers {
		text := fmt.Sprintf("%s %s", r.Digest, r.Format)
		switch {
		case r.PredicateType != "":
			text += " " + r.PredicateType
		case len(r.PredicateTypes) > 0:
			text += " " + strings.Join(r.PredicateTypes, ", ") + " (tag " + r.Tag + ")"
		case r.Tag != "":
			text += " (tag " + r.Tag + ")"
		case r.ArtifactType != "":
			text += " " + r.ArtifactType
		}
		lines = append(lines, line{text, nil})
	}
	for i, l := range lines {
		branch, next := "├── ", "│   "
		if i == len(lines)-1 {
			branch, next = "└── ", "    "
		}
		b.WriteString(prefix + branch + l.text + "\n")
		if l.node != nil {
			writeChildren(b, l.node, prefix+next)
		}
	}
}
