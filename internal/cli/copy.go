package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/promote"
	"github.com/seal-dev/seal/pkg/verify"
)

func init() { register(newCopyCmd) }

// copyOutput is the json document of `seal copy`.
type copyOutput struct {
	Passed  bool              `json:"passed"`
	Results []*promote.Result `json:"results"`
}

func newCopyCmd(g *Globals) *cobra.Command {
	var (
		policyFile  string
		trustedRoot string
		imagesFrom  string
		concurrency int
		output      *string
	)
	cmd := &cobra.Command{
		Use:   "copy [--policy FILE] [--images-from FILE] [--concurrency N] SRC DST",
		Short: "Promote an image to another registry with everything attached",
		Long: `Copies SRC to DST with everything attached: the index, every platform and attestation
manifest, every referrer (signature and attestation bundles, and what refers to them) and
cosign's legacy sha256-<hex>.sig/.att/.sbom tags. SRC is resolved to a digest once. Referrers
are made discoverable at DST the way DST supports: its referrers API, or the sha256-<hex>
fallback tag. Blobs are mounted within a registry and streamed across registries; what DST
has is skipped, so a second run writes nothing. DST's tag is written last: a run that stops
part-way leaves it as it was.

A DST without a tag takes SRC's. A legacy .sig/.att tag that DST already holds with other
signatures is merged (DST keeps its signatures); an .sbom tag is replaced.

With --policy (POLICY.md), SRC must pass verification before anything is copied, and DST is
verified by digest after the copy, before its tag is written; both verdicts are reported.

--images-from FILE ('-': stdin) promotes a batch: one "SRC DST" pair per line, blank lines
and # comments skipped, --concurrency images at once over one registry client.

Exit codes: 0 every image promoted; 1 an image failed the policy; 2 bad usage or input (a
malformed or missing reference, an unreadable policy or batch file); 3 a registry could not
be asked. When images fail for different reasons, 1 wins over 2, and 2 over 3.`,
		Example: `  seal copy staging.example/fleet:v1.2.0 prime.example/fleet
  seal copy --policy policy.yaml staging.example/fleet:v1.2.0 prime.example/fleet:v1.2.0
  seal copy --policy policy.yaml --images-from release.txt --output json`,
		Args: usageArgs(cobra.MaximumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			if concurrency < 1 {
				return fault.Inputf("--concurrency %d: want at least 1", concurrency)
			}
			pairs, err := copyPairs(g, args, imagesFrom)
			if err != nil {
				return err
			}
			c := g.client()
			opts := promote.Options{Concurrency: concurrency}
			if policyFile != "" {
				vf := verifyFlags{policy: policyFile, trustedRoot: trustedRoot}
				v, _, _, err := vf.verifier(g, cmd)
				if err != nil {
					return err
				}
				opts.Gate = promote.VerifierGate(v, c)
			} else if trustedRoot != "" {
				return fault.Inputf("--trusted-root is for --policy")
			}
			results, err := promote.CopyAll(cmd.Context(), c, pairs, opts)
			if results == nil {
				return err
			}
			out := copyOutput{Passed: err == nil, Results: results}
			if rerr := render(g.Stdout, *output, out, func(w io.Writer) error { return copyText(w, results) }); rerr != nil {
				return rerr
			}
			if err == nil {
				return nil
			}
			var first *promote.Result
			failed := 0
			for _, r := range results {
				if !r.Passed() {
					failed++
					if first == nil {
						first = r
					}
				}
			}
			if failed == 1 {
				return fault.Wrap(fault.KindOf(err), fmt.Errorf("copy %s: %s", first.Source, first.Error))
			}
			return fault.Wrap(fault.KindOf(err), fmt.Errorf("%d of %d images were not promoted; copy %s: %s", failed, len(results), first.Source, first.Error))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&policyFile, "policy", "", "verify SRC before and DST after the copy against this policy (POLICY.md)")
	fl.StringVar(&trustedRoot, "trusted-root", "", "with --policy: Sigstore trusted_root.json (default: the policy's, else the public-good root via TUF)")
	fl.StringVar(&imagesFrom, "images-from", "", "promote the \"SRC DST\" pairs of FILE, one per line ('-': stdin)")
	fl.IntVar(&concurrency, "concurrency", promote.DefaultConcurrency, "images promoted at once")
	output = outputFlag(cmd)
	return cmd
}

// copyPairs is SRC DST from the arguments, or the pairs of --images-from;
// not both.
func copyPairs(g *Globals, args []string, from string) ([]promote.Pair, error) {
	if from == "" {
		if len(args) != 2 {
			return nil, fault.Inputf("want SRC and DST, or --images-from FILE")
		}
		return []promote.Pair{{Source: args[0], Destination: args[1]}}, nil
	}
	if len(args) != 0 {
		return nil, fault.Inputf("SRC DST and --images-from conflict: use one")
	}
	var r io.Reader = g.Stdin
	if from != "-" {
		f, err := os.Open(from)
		if err != nil {
			return nil, fault.Inputf("--images-from: %v", err)
		}
		defer f.Close()
		r = f
	}
	pairs, err := promote.ReadPairs(io.LimitReader(r, maxImageList))
	if err != nil {
		return nil, fmt.Errorf("--images-from %s: %w", from, err)
	}
	if len(pairs) == 0 {
		return nil, fault.Inputf("--images-from %s: no pairs", from)
	}
	return pairs, nil
}

// copyText is, per image, one line with the destination and the verdict,
// then what was copied and skipped, the gate's verdicts, warnings and the
// reason of a failure.
func copyText(w io.Writer, results []*promote.Result) error {
	var b strings.Builder
	done := 0
	for _, r := range results {
		dst := r.Destination
		if r.Digest != "" {
			dst += "@" + r.Digest
		}
		verdict := "promoted"
		switch {
		case !r.Passed():
			verdict = "FAILED"
		case !r.Tagged:
			verdict = "already promoted"
		}
		if r.Passed() {
			done++
		}
		fmt.Fprintf(&b, "%s -> %s  %s\n", r.Source, dst, verdict)
		if r.Digest != "" && (r.Verification == nil || r.Verification.Source == nil || r.Verification.Source.Passed) {
			fmt.Fprintf(&b, "  copied: %d manifests, %d blobs (%s), %d referrers, %d legacy tags",
				r.Manifests.Copied, r.Blobs.Copied, byteSize(r.Bytes.Copied), r.Referrers.Copied, r.LegacyTags.Copied)
			if r.LegacyTags.Merged > 0 {
				fmt.Fprintf(&b, " (+%d merged)", r.LegacyTags.Merged)
			}
			fmt.Fprintf(&b, "; present: %d manifests, %d blobs (%s), %d referrers, %d legacy tags\n",
				r.Manifests.Skipped, r.Blobs.Skipped, byteSize(r.Bytes.Skipped), r.Referrers.Skipped, r.LegacyTags.Skipped)
		}
		gateFailed := false
		if v := r.Verification; v != nil {
			gateLine(&b, "source", v.Source)
			gateLine(&b, "destination", v.Destination)
			gateFailed = (v.Source != nil && !v.Source.Passed) || (v.Destination != nil && !v.Destination.Passed)
		}
		for _, msg := range r.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", msg)
		}
		// A verdict's reasons are listed under it already.
		if r.Error != "" && !gateFailed {
			fmt.Fprintf(&b, "  error: %s\n", r.Error)
		}
	}
	fmt.Fprintf(&b, "%d of %d images promoted\n", done, len(results))
	_, err := io.WriteString(w, b.String())
	return err
}

func gateLine(b *strings.Builder, where string, v *verify.Result) {
	if v == nil {
		return
	}
	verdict := "passed"
	if !v.Passed {
		verdict = "FAILED"
	}
	rule := v.Rule
	if rule == "" {
		rule = "-"
	}
	fmt.Fprintf(b, "  %s %s (rule %s)", where, verdict, rule)
	if e := v.Exception; e != nil {
		fmt.Fprintf(b, ", exception until %s: %s", e.Expires, e.Reason)
	}
	b.WriteString("\n")
	for _, msg := range v.Errors {
		fmt.Fprintf(b, "    %s\n", msg)
	}
}

// byteSize is n in binary units, for people.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
