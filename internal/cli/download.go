package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/verify"
)

func init() { register(newDownloadCmd) }

func newDownloadCmd(g *Globals) *cobra.Command {
	var (
		platforms     []string
		predicateType string
		policyFile    string
		trustedRoot   string
		concurrency   int
	)
	cmd := &cobra.Command{
		Use:   "download provenance|sbom|attestation [--platform P] [--predicate-type URI] [--policy FILE [--trusted-root F]] [--output text|json] IMAGE",
		Short: "Write the provenance, SBOM or attestations attached to an image to stdout",
		Long: `Writes the predicates of the attestations attached to IMAGE and to its platform manifests:
Sigstore bundle referrers and cosign .att tags (signed, but not verified: use --policy for
that), and the statements BuildKit stored unsigned in the index's attestation manifests.

text: each predicate as one line of JSON. json: {"image","reference","digest","attestations":
[{"subject","platform","predicateType","signed","sources":[{"format","signed","digest","tag"}],
"predicate"}]}, where signed is false for BuildKit's unsigned statements. The same statement
found in several places is written once, with each source listed.

--platform keeps only that platform manifest's attestations; a platform the image does not have is
an error (exit 2) naming those it has, never another platform's data. Every statement written
names its manifest's digest as subject; anything of the kind asked for that cannot be read intact
is an error.

--policy FILE first verifies IMAGE as 'seal verify --policy FILE' does (same engine, same
trusted material: --trusted-root, else the policy's, else the public-good root). An image that
does not pass is exit 1 with the verification's reasons, and nothing is written. Otherwise only
the attestations the verdict rests on are written: for each attestation the policy's rule
requires, the signed artifact that counted (one per manifest that needed it), read back by its
digest. BuildKit's unsigned statements and signed attestations that did not verify, or that the
rule does not require, are never written. Asking for a kind or --predicate-type the rule does not
require, or for a --platform on which nothing of the kind was verified (say the rule requires
provenance on the index, or on linux/amd64 only), is exit 1 naming what was verified. json
then adds "rule", and "verified", "identity", "issuer" to each attestation.`,
		Example: `  seal download provenance --platform linux/arm64 ghcr.io/org/app:v1.2.0 > provenance.json
  seal download sbom -o json ghcr.io/org/app@sha256:…
  seal download provenance --policy policy.yaml --platform linux/amd64 ghcr.io/org/app:v1.2.0`,
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
			c := g.client()
			opts := attest.DownloadOptions{Kind: kind, PredicateType: predicateType, Platforms: platforms, Concurrency: concurrency}
			if policyFile != "" {
				vf := verifyFlags{policy: policyFile, trustedRoot: trustedRoot}
				v, _, _, err := vf.verifier(g, cmd)
				if err != nil {
					return err
				}
				opts.Gate = downloadGate(v, c, g.Stderr)
			} else if trustedRoot != "" {
				return fault.Inputf("--trusted-root is for --policy")
			}
			res, err := attest.Download(cmd.Context(), c, args[1], opts)
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
	fl.StringVar(&policyFile, "policy", "", "verify the image against this policy (POLICY.md) and write only the attestations that verified")
	fl.StringVar(&trustedRoot, "trusted-root", "", "with --policy: Sigstore trusted_root.json (default: the policy's, else the public-good root via TUF)")
	fl.IntVar(&concurrency, "concurrency", attest.DefaultConcurrency, "manifests read at once")
	outputFlag(cmd)
	return cmd
}

// downloadGate adapts the verifier to the verdict attest.Download reads:
// an image that does not pass is its result's error (exit 1 for a failed
// check), with every reason; its warnings go to stderr, as verify's do.
func downloadGate(v *verify.Verifier, c *oci.Client, stderr io.Writer) attest.Gate {
	return func(ctx context.Context, ref name.Reference) (*attest.Verdict, error) {
		res := v.Verify(ctx, c, ref)
		if err := res.Err(); err != nil {
			return nil, err
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "seal: warning: %s\n", w)
		}
		out := &attest.Verdict{Digest: res.Digest, Rule: res.Rule}
		for _, a := range res.Attestations {
			va := attest.VerifiedAttestation{PredicateType: a.PredicateType, Platform: a.Platform, Verified: a.Verified,
				Identity: a.Identity, Issuer: a.Issuer, Format: a.Format}
			if s := a.Source; s != nil {
				va.Manifest, va.Digest, va.Tag = s.Manifest, s.Digest, s.Tag
			}
			out.Attestations = append(out.Attestations, va)
		}
		return out, nil
	}
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
