package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/signing"
)

func init() { register(newAttestCmd) }

type attestOutput struct {
	Results []attest.Result `json:"results"`
}

func newAttestCmd(g *Globals) *cobra.Command {
	var (
		sf           signerFlags
		typ          string
		predicate    string
		fromBuildKit bool
		platforms    []string
		format       string
		slsaVersion  string
		concurrency  int
	)
	cmd := &cobra.Command{
		Use:   "attest [--key FILE | --keyless] (--type TYPE --predicate FILE | --from-buildkit) [--platform P]… [--format bundle|legacy|both] IMAGE…",
		Short: "Sign in-toto attestations about images by digest, in the formats cosign verifies",
		Long: `Signs an in-toto statement v1 (subject = the manifest digest, named by its repository) as a
DSSE Sigstore bundle stored as an OCI referrer, as 'cosign attest' v3 does (annotation
dev.sigstore.bundle.predicateType = the predicate type); --format legacy writes cosign's
sha256-<hex>.att tag instead, both writes both.

--type TYPE --predicate FILE signs FILE ('-' for stdin) about each IMAGE's digest, or with
--platform about those platform manifests of an index. TYPE is a URI or one of: ` + strings.Join(attestation.PredicateTypeNames(), ", ") + `.
The predicate is validated (JSON; for SLSA provenance, SPDX and CycloneDX the required fields)
before anything is signed.

--from-buildkit signs the provenance and SBOM statements BuildKit stored unsigned in the index's
attestation manifests, each against its own platform manifest digest (never the index), after
checking that each statement is about that manifest. --platform limits it; --slsa-version 1
converts SLSA v0.2 provenance to v1 first.

Every IMAGE is resolved once and everything is read and checked before anything is signed: a bad
input pushes nothing.`,
		Example: `  seal attest --key cosign.key --type slsaprovenance1 --predicate provenance.json ghcr.io/org/app@sha256:…
  seal attest --key cosign.key --from-buildkit --format both ghcr.io/org/app:v1.2.0`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, images []string) error {
			out := cmd.Flag("output").Value.String()
			if err := checkOutput(out); err != nil {
				return err
			}
			f, err := signing.ParseFormat(format)
			if err != nil {
				return err
			}
			opts := attest.Options{Format: f, Platforms: platforms, SLSAVersion: slsaVersion, Concurrency: concurrency}
			if fromBuildKit {
				if typ != "" || predicate != "" {
					return fault.Inputf("--from-buildkit and --type/--predicate conflict: the statements come from the index")
				}
			} else {
				if typ == "" || predicate == "" {
					return fault.Inputf("give --type TYPE and --predicate FILE, or --from-buildkit")
				}
				if slsaVersion != "" {
					return fault.Inputf("--slsa-version is for --from-buildkit")
				}
				// Check the predicate before the signer is built (which may
				// ask for a password or an OIDC token).
				pt, err := attestation.PredicateTypeFor(typ)
				if err != nil {
					return err
				}
				data, err := readPredicate(g, predicate)
				if err != nil {
					return err
				}
				if err := attestation.ValidatePredicate(pt, data); err != nil {
					return fmt.Errorf("%s: %w", predicate, err)
				}
				opts.PredicateType, opts.Predicate = pt, data
			}
			if _, err := attest.ParsePlatforms(platforms); err != nil {
				return err
			}
			if opts.Signer, err = sf.signer(g); err != nil {
				return err
			}
			run := attest.Attest
			if fromBuildKit {
				run = attest.FromBuildKit
			}
			results, err := run(cmd.Context(), g.client(), images, opts)
			if results == nil && err != nil {
				return err
			}
			if rerr := render(g.Stdout, out, attestOutput{Results: results}, func(w io.Writer) error {
				return attestText(w, results)
			}); rerr != nil {
				return rerr
			}
			errs := failures(results, func(r attest.Result) string { return r.Error })
			return finishBatch(g, out, errs, len(results), "attestations", err)
		},
	}
	sf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&typ, "type", "", "predicate type: a URI or a short name ("+strings.Join(attestation.PredicateTypeNames(), ", ")+")")
	fl.StringVar(&predicate, "predicate", "", "file holding the predicate JSON ('-' for stdin)")
	fl.BoolVar(&fromBuildKit, "from-buildkit", false, "sign the statements of the index's BuildKit attestation manifests, each against its platform manifest")
	fl.StringArrayVar(&platforms, "platform", nil, "OS/ARCH[/VARIANT]: only this platform manifest of an index (repeatable)")
	fl.StringVar(&format, "format", "bundle", "attestation format: bundle, legacy or both")
	fl.StringVar(&slsaVersion, "slsa-version", "", "with --from-buildkit: 1 converts SLSA v0.2 provenance to v1 before signing")
	fl.IntVar(&concurrency, "concurrency", attest.DefaultConcurrency, "images read and attestations written at once")
	outputFlag(cmd)
	return cmd
}

// readPredicate reads the predicate file (or stdin for "-"), refusing more
// than a statement may hold.
func readPredicate(g *Globals, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = g.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fault.Inputf("predicate: %v", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, attestation.MaxStatementSize+1))
	if err != nil {
		return nil, fault.Inputf("predicate %s: %v", path, err)
	}
	if len(data) > attestation.MaxStatementSize {
		return nil, fault.Inputf("predicate %s: more than %d bytes", path, attestation.MaxStatementSize)
	}
	return data, nil
}

// attestText writes one line per attestation written:
// `REPO@sha256:… attested https://slsa.dev/provenance/v1 (bundle, linux/arm64)`.
func attestText(w io.Writer, results []attest.Result) error {
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		detail := string(r.Format)
		if r.Platform != "" {
			detail += ", " + r.Platform
		}
		if r.ConvertedFrom != "" {
			detail += ", converted from " + r.ConvertedFrom
		}
		if _, err := fmt.Fprintf(w, "%s attested %s (%s)\n", r.Reference, r.PredicateType, detail); err != nil {
			return err
		}
	}
	return nil
}
