package cli

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/fault"
)

func init() { register(newDownloadCmd) }

func newDownloadCmd(g *Globals) *cobra.Command {
	var (
		platforms     []string
		predicateType string
		policyFile    string
		concurrency   int
	)
	cmd := &cobra.Command{
		Use:   "download provenance|sbom|attestation [--platform P] [--predicate-type URI] [--output text|json] IMAGE",
		Short: "Write the provenance, SBOM or attestations attached to an image to stdout",
		Long: `Writes the predicates of the attestations attached to IMAGE and to its platform manifests:
Sigstore bundle referrers and cosign .att tags (signed, but not verified: use 'seal verify' for
that), and the statements BuildKit stored unsigned in the index's attestation manifests.

text: each predicate as one line of JSON. json: {"image","reference","digest","attestations":
[{"subject","platform","predicateType","signed","sources":[{"format","signed","digest","tag"}],
"predicate"}]}, where signed is false for BuildKit's unsigned statements. The same statement
found in several places is written once, with each source listed.

--platform keeps only that platform manifest's attestations; a platform the image does not have is
an error (exit 2) naming those it has, never another platform's data. Every statement written
names its manifest's digest as subject; anything of the kind asked for that cannot be read intact
is an error.`,
		Example: `  seal download provenance --platform linux/arm64 ghcr.io/org/app:v1.2.0 > provenance.json
  seal download sbom -o json ghcr.io/org/app@sha256:…`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.Flag("output").Value.String()
			if err := checkOutput(out); err != nil {
				return err
			}
			kind, err := attest.ParseKind(args[0])
			if err != nil {
				return err
			}
			if policyFile != "" {
				// pkg/verify checks images against a policy but does not
				// (yet) return the verified statements of one digest.
				return fault.Inputf("--policy: not supported by download yet; run 'seal verify --policy %s %s' and download from the digest it verified", policyFile, args[1])
			}
			res, err := attest.Download(cmd.Context(), g.client(), args[1], attest.DownloadOptions{
				Kind: kind, PredicateType: predicateType, Platforms: platforms, Concurrency: concurrency,
			})
			if err != nil {
				return err
			}
			return render(g.Stdout, out, res, func(w io.Writer) error {
				return downloadText(w, res)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&platforms, "platform", nil, "OS/ARCH[/VARIANT]: only this platform manifest's attestations (repeatable)")
	fl.StringVar(&predicateType, "predicate-type", "", "only this predicate type (a URI or a short name such as slsaprovenance1)")
	fl.StringVar(&policyFile, "policy", "", "only attestations that verify against this policy (not supported yet)")
	fl.IntVar(&concurrency, "concurrency", attest.DefaultConcurrency, "manifests read at once")
	outputFlag(cmd)
	return cmd
}

// downloadText writes each predicate as one line of JSON.
func downloadText(w io.Writer, res *attest.Downloaded) error {
	var b bytes.Buffer
	for _, a := range res.Attestations {
		if err := json.Compact(&b, a.Predicate); err != nil {
			return err
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}
