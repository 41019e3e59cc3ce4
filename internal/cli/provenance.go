package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
)

func init() { register(newProvenanceCmd) }

func newProvenanceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provenance",
		Short: "Generate SLSA provenance",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newProvenanceGenerateCmd(g))
	return cmd
}

func newProvenanceGenerateCmd(g *Globals) *cobra.Command {
	var (
		from     string
		subjects []string
	)
	cmd := &cobra.Command{
		Use:   "generate [--from github|local] [--subject IMAGE@DIGEST]…",
		Short: "Write an SLSA v1 provenance predicate for this build to stdout",
		Long: `Writes an SLSA v1 provenance predicate (https://slsa.dev/provenance/v1) to stdout.

--from github (default) reads the GitHub Actions environment and writes the layout of
GitHub's own build provenance (build type https://actions.github.io/buildtypes/workflow/v1).
--from local describes this machine, user and directory (build type
https://seal.dev/buildtypes/local/v1): nobody but you vouches for it.

The output is a predicate, ready for 'seal attest --type slsaprovenance1 --predicate FILE'.
With --subject, the output is instead a complete in-toto statement about those image
digests (for signers that take statements, such as 'cosign attest --statement'); do not
pass that to --predicate.`,
		Example: `  seal provenance generate > predicate.json
  seal attest --key cosign.key --type slsaprovenance1 --predicate predicate.json ghcr.io/org/app@sha256:…`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			subs := make([]attestation.Subject, 0, len(subjects))
			for _, s := range subjects {
				sub, err := attestation.ParseSubject(s)
				if err != nil {
					return err
				}
				subs = append(subs, sub)
			}
			var (
				out []byte
				err error
			)
			switch from {
			case "github":
				out, err = attestation.GenerateGitHub(os.Getenv, subs...)
				if fault.KindOf(err) == fault.Input && os.Getenv("GITHUB_ACTIONS") != "true" {
					err = fmt.Errorf("%w (outside GitHub Actions, use --from local)", err)
				}
			case "local":
				var b attestation.LocalBuild
				if b, err = attestation.LocalBuildFromHost(); err == nil {
					out, err = attestation.GenerateLocal(b, subs...)
				}
			default:
				return fault.Inputf("--from %q: want github or local", from)
			}
			if err != nil {
				return fmt.Errorf("provenance generate --from %s: %w", from, err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, out, "", "  "); err != nil {
				return err
			}
			buf.WriteByte('\n')
			_, err = g.Stdout.Write(buf.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "github", "where the build ran: github (GitHub Actions environment) or local")
	cmd.Flags().StringArrayVar(&subjects, "subject", nil, "IMAGE@sha256:DIGEST the provenance is about (repeatable); makes the output a whole in-toto statement")
	return cmd
}
