// Command verify compares `seal verify` of a whole release in one call with
// a loop of `cosign verify` (and, like for like, `cosign verify-attestation`)
// over the same images, and counts the registry requests seal makes per
// image against the floor of issue 5.
//
//	go run ./bench/verify [-n 100] [-registry fallback|api] [-seal-runs 3] [-attestations=true]
//
// Setup (not timed): one in-process registry on 127.0.0.1, and a counting
// reverse proxy in front of it; n two-platform images, each BuildKit's linux/amd64 and
// linux/arm64 pushes (internal/buildkit) merged by index.Create; every
// image signed with one key (bundle format, --recursive: the index and both
// platform manifests) and its BuildKit provenance signed per platform
// (attest.FromBuildKit: SLSA v1 bundles on each platform manifest).
//
// Measured, every tool as its own process (seal built from this tree, the
// pinned cosign v3.1.3):
//
//   - `seal verify --policy P IMAGE…` once over all n images, P requiring
//     the key's signature on the index and SLSA provenance signed by the key
//     on every platform; the median of -seal-runs runs;
//   - `cosign verify --key` once per image (the signature only);
//   - `cosign verify-attestation --key --type slsaprovenance1` once per
//     platform manifest (with the previous loop: what seal checks).
//
// Every timed run talks to the registry directly; the requests are counted
// in separate runs of the same commands through the proxy (cosign's on the
// first images only: each image costs it the same requests), so that no
// tool's time includes the proxy's. Then seal's requests are compared, class
// by class, with the floor.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/seal-dev/seal/bench/internal/benchenv"
	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
	"github.com/seal-dev/seal/pkg/verify"
)

const password = "bench-password"

func main() {
	n := flag.Int("n", 100, "images in the release")
	kind := flag.String("registry", string(benchenv.Fallback), "registry kind: fallback (CNCF Distribution, no referrers API) or api (go-containerregistry's, referrers API)")
	sealRuns := flag.Int("seal-runs", 3, "runs of seal verify (median shown); the cosign loops run once")
	attestations := flag.Bool("attestations", true, "also run the cosign verify-attestation loop (2 per image)")
	flag.Parse()
	log.SetFlags(0)
	if *n < 1 || *sealRuns < 1 || (*kind != string(benchenv.Fallback) && *kind != string(benchenv.API)) {
		log.Fatal("bench/verify: bad flags")
	}
	if err := bench(*n, benchenv.Kind(*kind), *sealRuns, *attestations); err != nil {
		log.Fatalf("bench/verify: %v", err)
	}
}

// row is one tool's figures.
type row struct {
	tool     string
	took     time.Duration
	requests int64
	bytes    int64
	calls    int
}

func bench(n int, kind benchenv.Kind, sealRuns int, attestations bool) error {
	ctx := context.Background()
	ws, err := benchenv.Setup("verify", "cosign")
	if err != nil {
		return err
	}
	defer ws.Close()
	tmp, seal, home := ws.Dir, ws.Seal, ws.Home
	cosign := ws.Tools["cosign"]

	reg, stop, err := benchenv.StartRegistry(kind)
	if err != nil {
		return err
	}
	defer stop()
	proxy, err := benchenv.NewProxy(reg)
	if err != nil {
		return err
	}
	defer proxy.Close()

	// The release, signed and attested.
	setup := time.Now()
	c := oci.NewClient()
	images, err := benchenv.PushImages(ctx, c, reg, "bench/app%03d", n)
	if err != nil {
		return err
	}
	priv, pub, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		return err
	}
	pubPath := filepath.Join(tmp, "release.pub")
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return err
	}
	key, err := signing.LoadPrivateKey(priv, []byte(password))
	if err != nil {
		return err
	}
	signer, err := signing.NewKeySigner(key, signing.Services{})
	if err != nil {
		return err
	}
	digests := make([]string, n)
	for i, im := range images {
		digests[i] = im.Index.String()
	}
	if _, err := signing.Sign(ctx, c, digests, signing.Options{Signer: signer, Format: signing.FormatBundle, Recursive: true}); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if _, err := attest.FromBuildKit(ctx, c, digests, attest.Options{Signer: signer, Format: signing.FormatBundle}); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	if err := writeUnusedTrustedRoot(filepath.Join(tmp, "trusted_root.json")); err != nil {
		return err
	}
	policyPath, err := writePolicy(tmp, "policy.yaml", reg)
	if err != nil {
		return err
	}
	countedPolicy, err := writePolicy(tmp, "policy-counted.yaml", proxy.Host)
	if err != nil {
		return err
	}
	fmt.Printf("%d two-platform images in %s (%s) signed and attested in %v\n", n, reg, kind.Name(), time.Since(setup).Round(time.Millisecond))
	fmt.Printf("load average before the runs: %s\n\n", benchenv.LoadAverage())

	tags := make([]string, n)
	for i, im := range images {
		tags[i] = im.Tag.String()
	}
	// The same images, named through the counting proxy.
	counted := func(refs []string) []string {
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = proxy.Host + strings.TrimPrefix(r, reg)
		}
		return out
	}
	sealArgs := append([]string{"verify", "--policy", policyPath, "--output", "json"}, tags...)
	cosignVerify := func(img string) []string {
		return []string{"verify", "--key", pubPath, "--insecure-ignore-tlog=true", "--allow-insecure-registry", img}
	}
	cosignAttest := func(img string) []string {
		return []string{"verify-attestation", "--key", pubPath, "--type", "slsaprovenance1",
			"--insecure-ignore-tlog=true", "--allow-insecure-registry", img}
	}

	// Warm-up: each binary once (page cache), and each tool checked to
	// accept what it is timed on. Then seal on one image, timed: its fixed
	// cost (process, policy, first connection).
	one := append(slices.Clone(sealArgs[:5]), tags[0])
	if _, err := runSeal(seal, home, one, 1); err != nil {
		return err
	}
	if _, err := runTool(cosign, home, cosignVerify(tags[0])); err != nil {
		return err
	}
	start := time.Now()
	if _, err := runSeal(seal, home, one, 1); err != nil {
		return err
	}
	sealOne := time.Since(start)

	// seal: one call over all images.
	countedArgs := append([]string{"verify", "--policy", countedPolicy, "--output", "json"}, counted(tags)...)
	sealRow, sealTimes, sealLog, err := timeAndCount(proxy, sealRuns, 1, func(viaProxy bool) error {
		args := sealArgs
		if viaProxy {
			args = countedArgs
		}
		_, err := runSeal(seal, home, args, n)
		return err
	})
	if err != nil {
		return err
	}
	sealRow.tool, sealRow.calls = "seal verify (signature + provenance on both platforms), one call", 1

	// seal doing exactly what `cosign verify --key` does: the key's signature
	// on each image, nothing else (a one-rule policy from the flags).
	keyRow, _, _, err := timeAndCount(proxy, sealRuns, 1, func(viaProxy bool) error {
		refs := tags
		if viaProxy {
			refs = counted(tags)
		}
		_, err := runSealSignatures(seal, home, append([]string{"verify", "--key", pubPath, "--output", "json"}, refs...), n)
		return err
	})
	if err != nil {
		return err
	}
	keyRow.tool, keyRow.calls = "seal verify --key (signature only), one call", 1

	// cosign: a loop, timed once; its requests counted on a sample.
	sample := min(n, cosignSample)
	cosignRow, _, cosignLog, err := timeAndCount(proxy, 1, float64(n)/float64(sample), func(viaProxy bool) error {
		refs := tags
		if viaProxy {
			refs = counted(tags[:sample])
		}
		for _, img := range refs {
			out, err := runTool(cosign, home, cosignVerify(img))
			if err != nil {
				return err
			}
			if !strings.Contains(out, "Verification for "+img) {
				return fmt.Errorf("cosign verify %s: no verification reported:\n%s", img, out)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	cosignRow.tool, cosignRow.calls = "cosign verify --key (signature only), loop", n

	rows := []row{sealRow, keyRow, cosignRow}
	if attestations {
		var platforms []string
		for _, im := range images {
			for _, p := range im.Platforms {
				platforms = append(platforms, im.Tag.Context().Digest(p.String()).String())
			}
		}
		attRow, _, _, err := timeAndCount(proxy, 1, float64(n)/float64(sample), func(viaProxy bool) error {
			refs := platforms
			if viaProxy {
				refs = counted(platforms[:2*sample])
			}
			for _, ref := range refs {
				if _, err := runTool(cosign, home, cosignAttest(ref)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		attRow.tool, attRow.calls = "cosign verify-attestation --type slsaprovenance1, loop per platform", 2*n
		both := row{tool: "cosign: both loops (what seal checks)", took: cosignRow.took + attRow.took,
			requests: cosignRow.requests + attRow.requests, bytes: cosignRow.bytes + attRow.bytes, calls: cosignRow.calls + attRow.calls}
		rows = append(rows, attRow, both)
	}

	fmt.Printf("%d images; seal: median of %d runs (%s; one image alone: %v); cosign loops: one run, sequential\n",
		n, sealRuns, runTimes(sealTimes), sealOne.Round(time.Millisecond))
	fmt.Printf("timed against the registry directly; requests and bytes counted through the proxy in a run of their own (cosign: on the first %d images)\n", sample)
	t := benchenv.NewTable(os.Stdout, "tool", "processes", "total time", "per image", "requests/image", "bytes/image", "x seal time")
	for _, r := range rows {
		t.Row(r.tool, fmt.Sprint(r.calls), r.took.Round(time.Millisecond).String(),
			(r.took / time.Duration(n)).Round(100*time.Microsecond).String(),
			fmt.Sprintf("%.2f", float64(r.requests)/float64(n)), benchenv.KiB(r.bytes/int64(n)),
			fmt.Sprintf("%.1f", r.took.Seconds()/sealRow.took.Seconds()))
	}
	t.Flush()
	fmt.Printf("like for like: cosign verify --key loop / seal verify --key = %.1fx; both cosign loops / seal verify --policy = %s\n",
		cosignRow.took.Seconds()/keyRow.took.Seconds(), likeForLike(rows, sealRow))
	fmt.Printf("load average after the runs: %s\n\n", benchenv.LoadAverage())

	report(os.Stdout, kind, n, sealLog, benchenv.Roles(images), "seal verify")
	fmt.Println()
	benchenv.PrintClasses(os.Stdout, fmt.Sprintf("cosign verify (all its requests, first %d images)", sample), sample, cosignLog)
	return nil
}

// cosignSample is how many images cosign's requests are counted on: the same
// requests for every image, and a counted loop over all would double the
// harness's longest part.
const cosignSample = 10

// runSeal runs seal verify --policy and checks that all want images passed
// with one verified signature and a verified provenance per platform.
func runSeal(seal, home string, args []string, want int) (string, error) {
	return runSealVerify(seal, home, args, want, func(r verify.Result) error {
		sigs, atts := 0, 0
		for _, s := range r.Signatures {
			if s.Verified {
				sigs++
			}
		}
		for _, a := range r.Attestations {
			if a.Verified && a.Platform != "" {
				atts++
			}
		}
		if !r.Passed || sigs < 1 || atts != 2 {
			return fmt.Errorf("passed %v, %d signatures, %d platform attestations verified", r.Passed, sigs, atts)
		}
		return nil
	})
}

// runSealSignatures runs seal verify --key and checks that all want images
// passed with a verified signature.
func runSealSignatures(seal, home string, args []string, want int) (string, error) {
	return runSealVerify(seal, home, args, want, func(r verify.Result) error {
		if len(r.Signatures) == 0 || !r.Signatures[0].Verified {
			return fmt.Errorf("no verified signature")
		}
		return nil
	})
}

// runSealVerify runs seal verify with json output and checks that all want
// images passed and that each result satisfies check.
func runSealVerify(seal, home string, args []string, want int, check func(verify.Result) error) (string, error) {
	cmd := benchenv.ToolCmd(seal, home, nil, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("seal %s: %v\n%s%s", strings.Join(args[:5], " "), err, stderr.Bytes(), truncate(stdout.String()))
	}
	var out struct {
		Passed  bool            `json:"passed"`
		Results []verify.Result `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return "", fmt.Errorf("seal verify json: %v", err)
	}
	if !out.Passed || len(out.Results) != want {
		return "", fmt.Errorf("seal %s: passed %v, %d results, want %d", strings.Join(args[:3], " "), out.Passed, len(out.Results), want)
	}
	for _, r := range out.Results {
		if err := check(r); err != nil {
			return "", fmt.Errorf("seal %s %s: %w", strings.Join(args[:3], " "), r.Image, err)
		}
	}
	return stdout.String(), nil
}

// likeForLike is the ratio of both cosign loops to seal verify --policy,
// when the attestation loop ran.
func likeForLike(rows []row, seal row) string {
	for _, r := range rows {
		if strings.HasPrefix(r.tool, "cosign: both loops") {
			return fmt.Sprintf("%.1fx", r.took.Seconds()/seal.took.Seconds())
		}
	}
	return "not run"
}

func runTool(bin, home string, args []string) (string, error) {
	cmd := benchenv.ToolCmd(bin, home, nil, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, truncate(string(out)))
	}
	return string(out), nil
}

func truncate(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}

// floor is the request floor of issue 5 for one image of this release
// shape: the index (one manifest request: the GET that resolves the tag
// also gives the manifest); one referrers request for each manifest whose
// attachments are needed — the index (its signature) and both platform
// manifests (their provenance); two per bundle needed (the referrer's
// manifest, then its bundle blob) — one signature and two provenance
// bundles. On a registry without the referrers API the referrers request
// is the GET of the fallback tag sha256-<hex>.
func floor(kind benchenv.Kind) map[string]int {
	referrers := "GET referrers"
	if kind == benchenv.Fallback {
		referrers = "GET fallback tag"
	}
	return map[string]int{
		"GET manifest by tag":    1,
		referrers:                3,
		"GET manifest by digest": 3,
		"GET blob":               3,
	}
}

// report prints tool's requests per image by class against the floor, and
// the extra ones.
func report(w io.Writer, kind benchenv.Kind, n int, reqs []benchenv.Request, roles map[v1.Hash]string, tool string) {
	fl := floor(kind)
	total := 0
	for _, v := range fl {
		total += v
	}
	counts := benchenv.ClassCounts(reqs)
	fmt.Fprintf(w, "%s: %.2f requests per image against a floor of %d (index 1 + referrers 3 + 2 x 3 bundles)\n",
		tool, float64(len(reqs))/float64(n), total)
	t := benchenv.NewTable(w, "request class", "total", "per image", "floor per image", "extra in total")
	extra := 0
	for _, class := range benchenv.Keys(counts, fl) {
		got, want := counts[class], fl[class]*n
		e := max(got-want, 0)
		extra += e
		t.Row(class, fmt.Sprint(got), fmt.Sprintf("%.2f", float64(got)/float64(n)), fmt.Sprint(fl[class]), fmt.Sprint(e))
	}
	t.Flush()
	if extra == 0 {
		fmt.Fprintln(w, "at the floor")
		return
	}
	fmt.Fprintf(w, "%d requests above the floor; the requests of the classes above it, by path (repository names folded):\n", extra)
	for _, class := range benchenv.Keys(counts, fl) {
		if counts[class] <= fl[class]*n {
			continue
		}
		paths := map[string]int{}
		for _, r := range reqs {
			if benchenv.Class(r) != class {
				continue
			}
			what := benchenv.Fold(r.Path)
			if i := strings.LastIndex(r.Path, "/manifests/"); i >= 0 {
				role := "a referrer (bundle) manifest"
				if h, err := v1.NewHash(r.Path[i+len("/manifests/"):]); err == nil && roles[h] != "" {
					role = "the " + roles[h]
				} else if err != nil {
					role = "a tag"
				}
				what += " (" + role + ")"
			}
			paths[what]++
		}
		for _, p := range benchenv.ByCount(paths) {
			fmt.Fprintf(w, "  %5d  %s %s\n", paths[p], class, p)
		}
	}
}

func runTimes(times []time.Duration) string {
	var s []string
	for _, t := range times {
		s = append(s, t.Round(time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}

// timeAndCount times run against the registry directly, the median of runs
// tries (all returned, fastest first), then runs it once through the proxy
// to count its requests and bytes, multiplied by scale when that run covers
// fewer images than the timed ones.
func timeAndCount(proxy *benchenv.Proxy, runs int, scale float64, run func(viaProxy bool) error) (row, []time.Duration, []benchenv.Request, error) {
	times := make([]time.Duration, 0, runs)
	for range runs {
		start := time.Now()
		if err := run(false); err != nil {
			return row{}, nil, nil, err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	proxy.Reset()
	if err := run(true); err != nil {
		return row{}, nil, nil, err
	}
	r := row{took: times[len(times)/2],
		requests: int64(float64(proxy.Requests()) * scale), bytes: int64(float64(proxy.Bytes()) * scale)}
	return r, times, proxy.Log(), nil
}

// writePolicy writes the policy seal verifies against: every image under
// host/bench/ signed by the release key, with SLSA v1 provenance signed by
// it on every platform. The policy names a trusted root (trusted_root.json
// beside it, from writeUnusedTrustedRoot): a fresh CA nothing was signed
// with, kept so that the harness also measures loading one.
func writePolicy(dir, file, host string) (string, error) {
	p := filepath.Join(dir, file)
	return p, os.WriteFile(p, []byte(`apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  trustedRoot: trusted_root.json
  keys:
    release: {path: release.pub}
unmatched: deny
rules:
  - name: release
    images: ["`+host+`/bench/**"]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
`), 0o644)
}

func writeUnusedTrustedRoot(path string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "seal bench unused CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root: cert, ValidityPeriodStart: cert.NotBefore, URI: "https://fulcio.invalid",
	}}, nil, nil, nil)
	if err != nil {
		return err
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
