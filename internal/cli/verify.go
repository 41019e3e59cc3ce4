package cli

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/trust"
	"github.com/seal-dev/seal/pkg/verify"
)

func init() { register(newVerifyCmd) }

// maxImageList caps --images-from: a release is hundreds of images, not
// millions.
const maxImageList = 16 << 20

type verifyFlags struct {
	policy      string
	key         string
	identity    string
	identityRE  string
	issuer      string
	issuerRE    string
	trustedRoot string
	imagesFrom  string
	concurrency int
	vsaOut      string
	output      *string
}

// verifyOutput is CLI.md's json document.
type verifyOutput struct {
	Passed  bool            `json:"passed"`
	Results []verify.Result `json:"results"`
}

func newVerifyCmd(g *Globals) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [--policy FILE] [--key FILE | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y] [--trusted-root FILE] [--images-from FILE|-] [--concurrency N] [--output text|json] IMAGE…",
		Short: "Verify images' signatures and attestations against a policy",
		Long: `Verifies every IMAGE against the policy (--policy, see POLICY.md), or against the key or
certificate identity given by flags (a one-rule policy: every image signed by that key or
identity). Each reference is resolved to a digest once; everything after is about that digest.
All images are checked even when some fail.

Keyless signatures are checked against --trusted-root, else the policy's trust.trustedRoot,
else the Sigstore public-good trusted root (TUF, cached on disk).

Exit codes: 0 every image passed; 1 an image did not pass (a failed check, including
signatures that cannot be fetched intact); 2 bad usage or input (a malformed or missing
reference, an unreadable policy); 3 a registry could not be asked (unreachable, auth
refused, timeout). When images fail for different reasons, 1 wins over 2, and 2 over 3.`,
		Example: `  seal verify --policy policy.yaml ghcr.io/example/fleet:v0.1.0 ghcr.io/example/fleet-agent:v0.1.0
  seal verify --key cosign.pub registry.example/app@sha256:…
  seal verify --certificate-identity-regexp '^https://github\.com/example/' \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com --images-from images.txt
  seal verify --policy policy.yaml --output json --vsa-out vsa/ --images-from - < images.txt`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, g, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "verification policy file (POLICY.md)")
	fl.StringVar(&f.key, "key", "", "without --policy: every image must be signed with this public key (PEM)")
	fl.StringVar(&f.identity, "certificate-identity", "", "without --policy: the certificate identity (SAN) signatures must have")
	fl.StringVar(&f.identityRE, "certificate-identity-regexp", "", "without --policy: a regexp the certificate identity must match")
	fl.StringVar(&f.issuer, "certificate-oidc-issuer", "", "without --policy: the OIDC issuer of the certificates")
	fl.StringVar(&f.issuerRE, "certificate-oidc-issuer-regexp", "", "without --policy: a regexp the OIDC issuer must match")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json (default: the policy's, else the public-good root via TUF)")
	fl.StringVar(&f.imagesFrom, "images-from", "", "read more images from FILE, one per line ('-': stdin; blank lines and # comments skipped)")
	fl.IntVar(&f.concurrency, "concurrency", verify.DefaultConcurrency, "images verified at once")
	fl.StringVar(&f.vsaOut, "vsa-out", "", "write an SLSA verification summary (unsigned in-toto statement) per image into DIR")
	f.output = outputFlag(cmd)
	return cmd
}

func runVerify(cmd *cobra.Command, g *Globals, f *verifyFlags, args []string) error {
	if err := checkOutput(*f.output); err != nil {
		return err
	}
	if f.concurrency < 1 {
		return fault.Inputf("--concurrency %d: want at least 1", f.concurrency)
	}
	images, err := imageList(g, args, f.imagesFrom)
	if err != nil {
		return err
	}
	v, policyURI, policyDigest, err := f.verifier(g, cmd)
	if err != nil {
		return err
	}
	c := g.client()
	refs := make([]name.Reference, len(images))
	for i, img := range images {
		if refs[i], err = c.ParseReference(img); err != nil {
			return err
		}
	}
	if f.vsaOut != "" {
		if err := os.MkdirAll(f.vsaOut, 0o755); err != nil {
			return fault.Inputf("--vsa-out: %v", err)
		}
	}

	start := time.Now()
	results := v.VerifyAll(cmd.Context(), c, refs, f.concurrency, progressBar(g.Stderr))
	if f.vsaOut != "" {
		if err := writeVSAs(f.vsaOut, results, verify.VSAOptions{
			Version: Version, PolicyURI: policyURI, PolicyDigest: policyDigest, Time: start,
		}); err != nil {
			return err
		}
	}
	out := verifyOutput{Passed: true, Results: results}
	for _, r := range results {
		out.Passed = out.Passed && r.Passed
	}
	if err := render(g.Stdout, *f.output, out, func(w io.Writer) error { return verifyText(w, results) }); err != nil {
		return err
	}
	return verifyError(results)
}

// imageList is the positional images followed by those of --images-from.
func imageList(g *Globals, args []string, from string) ([]string, error) {
	images := append([]string(nil), args...)
	if from != "" {
		var r io.Reader
		if from == "-" {
			r = g.Stdin
		} else {
			file, err := os.Open(from)
			if err != nil {
				return nil, fault.Inputf("--images-from: %v", err)
			}
			defer file.Close()
			r = file
		}
		sc := bufio.NewScanner(io.LimitReader(r, maxImageList))
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			images = append(images, line)
		}
		if err := sc.Err(); err != nil {
			return nil, fault.Inputf("--images-from %s: %v", from, err)
		}
	}
	if len(images) == 0 {
		return nil, fault.Inputf("no images: give IMAGE arguments or --images-from")
	}
	return images, nil
}

// loadPolicy reads --policy, or builds the one-rule policy of the key or
// identity flags. It also says how a verification summary names the policy.
// verifier builds the one verifier of a run from the flags: the policy (or
// the one-rule policy of --key / --certificate-*), its warnings on stderr, and
// the trusted material it needs. copy --policy and download --policy use it
// too, so all three judge an image the same way.
func (f *verifyFlags) verifier(g *Globals, cmd *cobra.Command) (*verify.Verifier, string, map[string]string, error) {
	pol, policyURI, policyDigest, err := f.loadPolicy()
	if err != nil {
		return nil, "", nil, err
	}
	for _, w := range pol.Warnings {
		fmt.Fprintf(g.Stderr, "seal: warning: %s\n", w)
	}
	trusted, err := f.trustedMaterial(cmd, pol)
	if err != nil {
		return nil, "", nil, err
	}
	v, err := verify.New(pol, trusted)
	if err != nil {
		return nil, "", nil, err
	}
	return v, policyURI, policyDigest, nil
}

func (f *verifyFlags) loadPolicy() (*policy.Policy, string, map[string]string, error) {
	identityFlags := f.key != "" || f.identity != "" || f.identityRE != "" || f.issuer != "" || f.issuerRE != ""
	if f.policy != "" {
		if identityFlags {
			return nil, "", nil, fault.Inputf("--policy and --key/--certificate-* conflict: the policy says who signs")
		}
		p, err := policy.Load(f.policy)
		if err != nil {
			return nil, "", nil, err
		}
		data, err := os.ReadFile(f.policy)
		if err != nil {
			return nil, "", nil, fault.Inputf("policy: %v", err)
		}
		sum := sha256.Sum256(data)
		abs, err := filepath.Abs(f.policy)
		if err != nil {
			abs = f.policy
		}
		return p, "file://" + filepath.ToSlash(abs), map[string]string{"sha256": hex.EncodeToString(sum[:])}, nil
	}
	if !identityFlags {
		return nil, "", nil, fault.Inputf("give --policy FILE, --key FILE, or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]")
	}
	p, err := policy.FromFlags(policy.Flags{
		Key: f.key, Issuer: f.issuer, IssuerRegExp: f.issuerRE, Subject: f.identity, SubjectRegExp: f.identityRE,
		TrustedRoot: f.trustedRoot,
	})
	if err != nil {
		return nil, "", nil, err
	}
	var desc []string
	for _, kv := range [][2]string{{"key", f.key}, {"certificate-identity", f.identity}, {"certificate-identity-regexp", f.identityRE},
		{"certificate-oidc-issuer", f.issuer}, {"certificate-oidc-issuer-regexp", f.issuerRE}} {
		if kv[1] != "" {
			desc = append(desc, kv[0]+"="+kv[1])
		}
	}
	uri := "seal:verify-flags?" + strings.Join(desc, "&")
	sum := sha256.Sum256([]byte(uri))
	return p, uri, map[string]string{"sha256": hex.EncodeToString(sum[:])}, nil
}

// trustedMaterial loads the trusted root: --trusted-root, else the
// policy's, else the public-good one through TUF. A policy of keys alone
// (a `--key` run, or a policy file without keyless authorities) needs none
// unless one is named, so it verifies offline.
func (f *verifyFlags) trustedMaterial(cmd *cobra.Command, pol *policy.Policy) (root.TrustedMaterial, error) {
	file := f.trustedRoot
	if file == "" {
		file = pol.Trust.TrustedRoot
	}
	if file == "" && !pol.Keyless() {
		return nil, nil
	}
	return trust.Load(cmd.Context(), trust.Options{TrustedRootFile: file})
}

// progressBar draws progress on stderr when it is a terminal, else nothing.
func progressBar(w io.Writer) func(done, total int) {
	file, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return nil
	}
	const width = 30
	return func(done, total int) {
		n := width * done / total
		fmt.Fprintf(w, "\rverifying [%s%s] %d/%d", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total)
		if done == total {
			fmt.Fprint(w, "\r\033[K")
		}
	}
}

// writeVSAs writes one summary per resolved image, named after its digest
// (the same digest twice in a batch, under two names, gets a numbered file).
func writeVSAs(dir string, results []verify.Result, opts verify.VSAOptions) error {
	seen := map[string]int{}
	for _, r := range results {
		if r.Digest == "" {
			continue
		}
		data, err := verify.VSA(r, opts)
		if err != nil {
			return err
		}
		file := verify.VSAFileName(r.Digest)
		if n := seen[r.Digest]; n > 0 {
			file = strings.TrimSuffix(file, ".vsa.json") + fmt.Sprintf(".%d.vsa.json", n+1)
		}
		seen[r.Digest]++
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			return fault.Operationalf("--vsa-out: %v", err)
		}
	}
	return nil
}

// verifyText is the table for people: one line per image, the reasons of
// a failure and the exception an image passed under right below it.
func verifyText(w io.Writer, results []verify.Result) error {
	type row struct{ image, digest, rule, verdict string }
	rows := []row{{"IMAGE", "DIGEST", "RULE", "RESULT"}}
	passed := 0
	for _, r := range results {
		x := row{image: r.Image, digest: r.Digest, rule: r.Rule, verdict: "FAILED"}
		if len(x.digest) > len("sha256:")+12 {
			x.digest = x.digest[:len("sha256:")+12] + "…"
		}
		if x.digest == "" {
			x.digest = "-"
		}
		if x.rule == "" {
			x.rule = "-"
		}
		if r.Passed {
			x.verdict = "passed"
			passed++
		}
		rows = append(rows, x)
	}
	var wi, wd, wr int
	for _, x := range rows {
		wi, wd, wr = max(wi, len([]rune(x.image))), max(wd, len([]rune(x.digest))), max(wr, len([]rune(x.rule)))
	}
	var b strings.Builder
	line := func(x row) {
		fmt.Fprintf(&b, "%s  %s  %s  %s\n", pad(x.image, wi), pad(x.digest, wd), pad(x.rule, wr), x.verdict)
	}
	line(rows[0])
	for i, r := range results {
		line(rows[i+1])
		if e := r.Exception; e != nil {
			state := "until"
			if e.Expired {
				state = "expired"
			}
			fmt.Fprintf(&b, "  exception (%s %s): %s\n", state, e.Expires, e.Reason)
		}
		for _, msg := range r.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", msg)
		}
		for _, msg := range r.Errors {
			fmt.Fprintf(&b, "  %s\n", msg)
		}
	}
	fmt.Fprintf(&b, "%d of %d images passed\n", passed, len(results))
	_, err := io.WriteString(w, b.String())
	return err
}

func pad(s string, width int) string {
	return s + strings.Repeat(" ", width-len([]rune(s)))
}

// verifyError is the command's error: nil when every image passed, else
// one line naming the image, the digest and the reason (the first failure,
// with a count when there are more), of the kind that decides the exit
// code: a failed check (1) over bad input (2) over an operational
// failure (3).
func verifyError(results []verify.Result) error {
	var failed []verify.Result
	for _, r := range results {
		if !r.Passed {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	rank := map[fault.Kind]int{fault.Verification: 0, fault.Input: 1, fault.Operational: 2, fault.Unknown: 2}
	sort.SliceStable(failed, func(i, j int) bool { return rank[failed[i].Kind] < rank[failed[j].Kind] })
	first := failed[0].Err()
	if len(failed) == 1 {
		return first
	}
	return fault.Wrap(fault.KindOf(first), fmt.Errorf("%d of %d images did not pass; %w", len(failed), len(results), first))
}
