// Command copy compares `seal copy` with `regctl image copy --referrers` and
// `crane copy` (the pinned real binaries) on the same signed, attested
// two-platform release, between a registry with the OCI referrers API and
// one without, in both directions.
//
//	go run ./bench/copy [-runs 3]
//
// For each tool and run: a fresh destination registry; the tool copies the
// release tag from the source; a byte-counting reverse proxy in front of
// each registry counts the request and response bodies and the requests;
// then what the destination holds is compared with the source (manifests
// of the tree, referrers discoverable the destination's way, cosign legacy
// tags); then the same command runs again on the now complete destination
// (the cost of a re-run). Wall time is the median over the runs; every tool
// runs as its own process, seal included.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/bench/internal/benchenv"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

func main() {
	runs := flag.Int("runs", 3, "runs per tool and scenario (fresh destination each); the median time is shown")
	flag.Parse()
	log.SetFlags(0)
	if err := bench(*runs); err != nil {
		log.Fatalf("bench/copy: %v", err)
	}
}

// tool is one way of copying src to dst.
type tool struct {
	name string
	args func(src, dst string) []string
	bin  string
}

type scenario struct {
	name     string
	srcKind  benchenv.Kind
	dstKind  benchenv.Kind
	srcImage string // tag at the source's proxy
}

type sample struct {
	took, retook        time.Duration
	bytes, rebytes      int64
	requests, requests2 int64
	complete            string
	err                 error
}

func bench(runs int) error {
	ctx := context.Background()
	ws, err := benchenv.Setup("copy", "regctl", "crane")
	if err != nil {
		return err
	}
	defer ws.Close()
	seal, home := ws.Seal, ws.Home
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	regctl := ws.Tools["regctl"]
	crane := ws.Tools["crane"]
	tools := []tool{
		{"seal copy", func(s, d string) []string { return []string{"copy", s, d} }, seal},
		{"regctl image copy --referrers", func(s, d string) []string {
			return []string{"image", "copy", "--referrers", s, d}
		}, regctl},
		{"regctl image copy --referrers --digest-tags", func(s, d string) []string {
			return []string{"image", "copy", "--referrers", "--digest-tags", s, d}
		}, regctl},
		{"crane copy", func(s, d string) []string { return []string{"copy", s, d} }, crane},
	}

	// The two sources, each holding the same release.
	sources := map[benchenv.Kind]*benchenv.Proxy{}
	for _, kind := range []benchenv.Kind{benchenv.API, benchenv.Fallback} {
		reg, stop, err := benchenv.StartRegistry(kind)
		if err != nil {
			return err
		}
		defer stop()
		p, err := benchenv.NewProxy(reg)
		if err != nil {
			return err
		}
		defer p.Close()
		sources[kind] = p
	}
	c := oci.NewClient()
	var releaseDigest string
	want := map[benchenv.Kind][]string{} // by source kind
	for _, kind := range []benchenv.Kind{benchenv.API, benchenv.Fallback} {
		d, err := pushRelease(ctx, c, root, sources[kind].Host)
		if err != nil {
			return fmt.Errorf("release in the %s registry: %w", kind, err)
		}
		releaseDigest = d.DigestStr()
		inv, err := inventory(ctx, c, d)
		if err != nil {
			return err
		}
		want[kind] = inv
	}
	scenarios := []scenario{
		{"referrers API -> fallback tag", benchenv.API, benchenv.Fallback, sources[benchenv.API].Host + "/staging/fleet:v1"},
		{"fallback tag -> referrers API", benchenv.Fallback, benchenv.API, sources[benchenv.Fallback].Host + "/staging/fleet:v1"},
	}

	fmt.Printf("release: %s (2 platforms + 2 BuildKit attestation manifests, signed in both formats, SLSA provenance as bundles + .att)\n", releaseDigest)
	fmt.Printf("at the source: %d entries (tree manifests, referrers, legacy tags); %d runs per tool, median time\n\n", len(want[benchenv.API]), runs)
	for _, sc := range scenarios {
		fmt.Printf("%s (source: %s, destination: %s)\n", sc.name, sc.srcKind.Name(), sc.dstKind.Name())
		t := benchenv.NewTable(os.Stdout, "tool", "time", "x seal", "bytes moved", "x seal", "requests", "copied at destination", "re-run time", "re-run bytes", "re-run requests")
		var base sample
		for i, tl := range tools {
			var samples []sample
			for range runs {
				s := runOnce(ctx, c, tl, sc, sources[sc.srcKind], home, want[sc.srcKind])
				if s.err != nil {
					return fmt.Errorf("%s, %s: %w", sc.name, tl.name, s.err)
				}
				samples = append(samples, s)
			}
			m := median(samples)
			if i == 0 {
				base = m
			}
			t.Row(tl.name,
				m.took.Round(time.Millisecond).String(), fmt.Sprintf("%.2f", m.took.Seconds()/base.took.Seconds()),
				benchenv.KiB(m.bytes), fmt.Sprintf("%.2f", float64(m.bytes)/float64(base.bytes)), fmt.Sprint(m.requests), m.complete,
				m.retook.Round(time.Millisecond).String(), benchenv.KiB(m.rebytes), fmt.Sprint(m.requests2))
		}
		t.Flush()
		fmt.Println()
	}
	fmt.Println("bytes moved: request + response bodies through the proxies in front of both registries.")
	fmt.Println("copied at destination: the source's tree manifests, referrers and legacy tags found at the destination")
	fmt.Println("(referrers through the API or the fallback tag, whichever the destination has).")
	return nil
}

// runOnce copies with a fresh destination, then again.
func runOnce(ctx context.Context, c *oci.Client, tl tool, sc scenario, src *benchenv.Proxy, home string, want []string) sample {
	reg, stop, err := benchenv.StartRegistry(sc.dstKind)
	if err != nil {
		return sample{err: err}
	}
	defer stop()
	dst, err := benchenv.NewProxy(reg)
	if err != nil {
		return sample{err: err}
	}
	defer dst.Close()
	// regctl needs to be told these registries speak plain HTTP.
	if strings.HasPrefix(tl.name, "regctl") {
		for _, h := range []string{src.Host, dst.Host} {
			if out, err := benchenv.ToolCmd(tl.bin, home, nil, "registry", "set", h, "--tls", "disabled").CombinedOutput(); err != nil {
				return sample{err: fmt.Errorf("regctl registry set: %v\n%s", err, out)}
			}
		}
	}
	dstImage := dst.Host + "/prime/fleet:v1"
	var s sample
	for pass := range 2 {
		src.Reset()
		dst.Reset()
		cmd := benchenv.ToolCmd(tl.bin, home, nil, tl.args(sc.srcImage, dstImage)...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			return sample{err: fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)}
		}
		bytes := src.Bytes() + dst.Bytes()
		reqs := src.Requests() + dst.Requests()
		if pass == 0 {
			s.took, s.bytes, s.requests = took, bytes, reqs
		} else {
			s.retook, s.rebytes, s.requests2 = took, bytes, reqs
		}
	}
	ref, err := c.ParseReference(dstImage)
	if err != nil {
		return sample{err: err}
	}
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		return sample{err: err}
	}
	got, err := inventory(ctx, c, ref.Context().Digest(desc.Digest.String()))
	if err != nil {
		return sample{err: err}
	}
	have := 0
	for _, e := range want {
		if slices.Contains(got, e) {
			have++
		}
	}
	s.complete = fmt.Sprintf("%d/%d", have, len(want))
	return s
}

func median(ss []sample) sample {
	sort.Slice(ss, func(i, j int) bool { return ss[i].took < ss[j].took })
	m := ss[len(ss)/2]
	re := slices.Clone(ss)
	sort.Slice(re, func(i, j int) bool { return re[i].retook < re[j].retook })
	m.retook = re[len(re)/2].retook
	return m
}

// pushRelease pushes the fleet BuildKit fixtures, merges them into
// staging/fleet:v1 with pkg/index, signs the index and both platforms in
// both formats and attests SLSA provenance (bundles on each; a legacy .att
// on the index).
func pushRelease(ctx context.Context, c *oci.Client, root, host string) (name.Digest, error) {
	var sources []name.Reference
	for _, arch := range []string{"amd64", "arm64"} {
		ref, err := pushFixture(ctx, filepath.Join(root, "testdata", "buildkit", "fleet__v0.1.0-linux-"+arch), host+"/staging/fleet-build:"+arch)
		if err != nil {
			return name.Digest{}, err
		}
		sources = append(sources, ref)
	}
	tag, err := name.NewTag(host+"/staging/fleet:v1", name.Insecure)
	if err != nil {
		return name.Digest{}, err
	}
	created, err := index.Create(ctx, c, tag, sources, index.CreateOptions{})
	if err != nil {
		return name.Digest{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return name.Digest{}, err
	}
	signer, err := signing.NewKeySigner(key, signing.Services{})
	if err != nil {
		return name.Digest{}, err
	}
	d := tag.Context().Digest(created.Digest.String())
	if _, err := signing.Sign(ctx, c, []string{d.String()}, signing.Options{Signer: signer, Format: signing.FormatBoth, Recursive: true}); err != nil {
		return name.Digest{}, err
	}
	subjects := []v1.Hash{created.Digest}
	for _, e := range created.Manifests {
		if e.Kind == index.KindImage {
			subjects = append(subjects, e.Digest)
		}
	}
	for i, h := range subjects {
		if err := attest(ctx, c, tag.Context().Digest(h.String()), signer, i == 0); err != nil {
			return name.Digest{}, err
		}
	}
	return d, nil
}

func pushFixture(ctx context.Context, dir, ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 || !im.Manifests[0].MediaType.IsIndex() {
		return nil, errors.New(dir + ": want one index in index.json")
	}
	idx, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx)); err != nil {
		return nil, err
	}
	return r.Context().Digest(im.Manifests[0].Digest.String()), nil
}

func attest(ctx context.Context, c *oci.Client, subject name.Digest, s signing.Signer, legacy bool) error {
	desc, err := c.Resolve(ctx, subject)
	if err != nil {
		return err
	}
	const pt = "https://slsa.dev/provenance/v1"
	st, err := attestation.NewStatement(pt,
		[]byte(`{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/b"}}}`),
		attestation.Subject{Name: subject.Context().Name(), Digest: map[string]string{"sha256": desc.Digest.Hex}})
	if err != nil {
		return err
	}
	b, err := signing.SignDSSE(ctx, s, st)
	if err != nil {
		return err
	}
	art, err := signing.BundleReferrer(desc, b, pt, time.Now())
	if err != nil {
		return err
	}
	if _, err := signing.AttachReferrer(ctx, c, subject, art); err != nil {
		return err
	}
	if !legacy {
		return nil
	}
	l, err := signing.AttestLegacy(ctx, s, st)
	if err != nil {
		return err
	}
	_, err = signing.AttachLegacy(ctx, c, subject, signing.LegacyAttestation, []signing.LegacyLayer{l}, s.PublicKey())
	return err
}

// inventory lists by digest every manifest of the tree under d, what refers
// to each (recursively) and each legacy tag with the manifest it names.
func inventory(ctx context.Context, c *oci.Client, d name.Digest) ([]string, error) {
	var out []string
	var referrers func(subject v1.Hash, depth int) error
	referrers = func(subject v1.Hash, depth int) error {
		refs, err := c.Referrers(ctx, d.Context().Digest(subject.String()))
		if err != nil {
			return err
		}
		for _, r := range refs {
			out = append(out, fmt.Sprintf("referrer %s -> %s", r.Digest, subject))
			if depth < 4 {
				if err := referrers(r.Digest, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var walk func(h v1.Hash) error
	walk = func(h v1.Hash) error {
		m, err := c.Manifest(ctx, d.Context().Digest(h.String()))
		if err != nil {
			return err
		}
		out = append(out, "manifest "+h.String())
		if m.IsIndex() {
			idx, err := m.Index()
			if err != nil {
				return err
			}
			for _, child := range idx.Manifests {
				if err := walk(child.Digest); err != nil {
					return err
				}
			}
		}
		if err := referrers(h, 1); err != nil {
			return err
		}
		att, err := c.Attached(ctx, d.Context().Digest(h.String()))
		if err != nil {
			return err
		}
		for _, l := range att.Legacy {
			out = append(out, fmt.Sprintf("legacy %s -> %s", l.Tag.TagStr(), l.Descriptor.Digest))
		}
		return nil
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	if err := walk(h); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
