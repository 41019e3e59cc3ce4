package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/signing"
)

func init() { register(newSignCmd) }

// Public-good Sigstore, used by --keyless when no service is named.
const (
	publicFulcioURL = "https://fulcio.sigstore.dev"
	publicRekorURL  = "https://rekor.sigstore.dev"
)

// signerFlags are the flags that choose a signer; attest shares them.
type signerFlags struct {
	key           string
	keyless       bool
	identityToken string
	fulcioURL     string
	timestampURLs []string
	rekorURL      string
	signingConfig string
	trustedRoot   string
}

func (f *signerFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "sign with this cosign private key file (password from SEAL_PASSWORD / COSIGN_PASSWORD or a prompt)")
	fl.BoolVar(&f.keyless, "keyless", false, "sign with a Fulcio certificate for an OIDC identity")
	fl.StringVar(&f.identityToken, "identity-token", "", "OIDC token for --keyless, or a file holding it (default: GitHub Actions' token)")
	fl.StringVar(&f.fulcioURL, "fulcio-url", "", "Fulcio URL for --keyless")
	fl.StringArrayVar(&f.timestampURLs, "timestamp-url", nil, "RFC 3161 timestamp authority URL (repeatable)")
	fl.StringVar(&f.rekorURL, "rekor-url", "", "Rekor URL: record each signature in this transparency log")
	fl.StringVar(&f.signingConfig, "signing-config", "", "Sigstore signing config file naming the Fulcio, TSA and Rekor URLs")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trusted_root.json to verify each keyless signature right after signing")
}

// signer builds the signer the flags ask for.
func (f *signerFlags) signer(g *Globals) (signing.Signer, error) {
	if (f.key == "") == !f.keyless {
		return nil, fault.Inputf("choose one of --key FILE or --keyless")
	}
	svc := signing.Services{TimestampURLs: f.timestampURLs, RekorURL: f.rekorURL, FulcioURL: f.fulcioURL}
	if f.signingConfig != "" {
		if f.fulcioURL != "" || f.rekorURL != "" || len(f.timestampURLs) > 0 {
			return nil, fault.Inputf("--signing-config and --fulcio-url/--timestamp-url/--rekor-url conflict: use one")
		}
		data, err := os.ReadFile(f.signingConfig)
		if err != nil {
			return nil, fault.Inputf("signing config: %v", err)
		}
		if svc, err = signing.ServicesFromSigningConfig(data); err != nil {
			return nil, err
		}
	}
	if f.key != "" {
		if f.identityToken != "" || f.trustedRoot != "" {
			return nil, fault.Inputf("--identity-token and --trusted-root are for --keyless")
		}
		return loadKeySigner(g, f.key, svc)
	}
	if f.signingConfig == "" && svc.FulcioURL == "" && svc.RekorURL == "" && len(svc.TimestampURLs) == 0 {
		svc.FulcioURL, svc.RekorURL = publicFulcioURL, publicRekorURL
	}
	tokens, err := signing.DefaultTokenSource(f.identityToken, os.Getenv, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	opts := signing.KeylessOptions{Services: svc, Token: tokens}
	if f.trustedRoot != "" {
		tr, err := root.NewTrustedRootFromPath(f.trustedRoot)
		if err != nil {
			return nil, fault.Inputf("trusted root %s: %v", f.trustedRoot, err)
		}
		opts.TrustedRoot = tr
	}
	return signing.NewKeylessSigner(opts)
}

type signOutput struct {
	Results []signing.Result `json:"results"`
}

func newSignCmd(g *Globals) *cobra.Command {
	var (
		sf          signerFlags
		recursive   bool
		format      string
		annotations []string
		concurrency int
	)
	cmd := &cobra.Command{
		Use:   "sign [--key FILE | --keyless] [--recursive] [--format bundle|legacy|both] [--annotation K=V]… [--concurrency N] IMAGE…",
		Short: "Sign images by digest, in the formats cosign verifies",
		Long: `Signs each IMAGE by digest: a tag is resolved once, and the digest it pointed to is
what is signed and reported. --recursive also signs every platform manifest of an index
(not BuildKit's attestation manifests).

--format bundle (default) stores a Sigstore bundle v0.3 (DSSE, in-toto statement with
predicate type https://sigstore.dev/cosign/sign/v1) as an OCI 1.1 referrer, as 'cosign
sign' v3 does (the sha256-<hex> referrers tag on registries without the referrers API);
--format legacy writes cosign's sha256-<hex>.sig tag; both writes both.

--keyless gets a Fulcio certificate for an OIDC token (--identity-token, or GitHub
Actions' token with audience sigstore) and timestamps from the TSAs (--timestamp-url) and/or
a Rekor entry; services by flag or --signing-config, default the public-good instance.`,
		Example: `  seal sign --key cosign.key registry.example/app:v1
  seal sign --keyless --recursive --signing-config sc.json registry.example/app@sha256:…`,
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
			ann, err := parseAnnotations(annotations)
			if err != nil {
				return err
			}
			signer, err := sf.signer(g)
			if err != nil {
				return err
			}
			results, err := signing.Sign(cmd.Context(), g.client(), images, signing.Options{
				Signer: signer, Format: f, Recursive: recursive, Annotations: ann, Concurrency: concurrency,
			})
			if results == nil && err != nil {
				return err
			}
			if rerr := render(g.Stdout, out, signOutput{Results: results}, func(w io.Writer) error {
				return signText(w, results)
			}); rerr != nil {
				return rerr
			}
			errs := failures(results, func(r signing.Result) string { return r.Error })
			return finishBatch(g, out, errs, len(results), "signatures", err)
		},
	}
	sf.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&recursive, "recursive", false, "also sign every platform manifest of an index")
	fl.StringVar(&format, "format", "bundle", "signature format: bundle, legacy or both")
	fl.StringArrayVarP(&annotations, "annotation", "a", nil, "KEY=VALUE signed with the image (repeatable)")
	fl.IntVar(&concurrency, "concurrency", signing.DefaultConcurrency, "manifests signed at once")
	outputFlag(cmd)
	return cmd
}

// signText writes one line per signature written:
// `IMAGE@sha256:… signed (bundle)`, with the platform for the manifests
// of an index signed with --recursive.
func signText(w io.Writer, results []signing.Result) error {
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		ref := r.Reference
		if r.Index == "" {
			// Keep the tag the user gave, so a tag that moved shows which
			// digest it had when it was signed.
			img := r.Image
			if i := strings.Index(img, "@"); i >= 0 {
				img = img[:i]
			}
			ref = img + "@" + r.Digest
		}
		detail := string(r.Format)
		if r.Platform != "" {
			detail += ", " + r.Platform
		}
		if _, err := fmt.Fprintf(w, "%s signed (%s)\n", ref, detail); err != nil {
			return err
		}
	}
	return nil
}
