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
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/registry"
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
	srcKind  string // "api" or "fallback"
	dstKind  string
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
	tmp, err := os.MkdirTemp("", "seal-bench-copy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}

	seal := filepath.Join(tmp, "seal")
	build := exec.Command("go", "build", "-o", seal, "./cmd/seal")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build seal: %v\n%s", err, out)
	}
	regctl, err := testenv.InstallTool("regctl")
	if err != nil {
		return err
	}
	crane, err := testenv.InstallTool("crane")
	if err != nil {
		return err
	}
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
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
	sources := map[string]*counted{}
	for _, kind := range []string{"api", "fallback"} {
		reg, stop, err := startRegistry(kind)
		if err != nil {
			return err
		}
		defer stop()
		p, err := newCounted(reg)
		if err != nil {
			return err
		}
		defer p.close()
		sources[kind] = p
	}
	c := oci.NewClient()
	var releaseDigest string
	want := map[string][]string{} // by source kind
	for _, kind := range []string{"api", "fallback"} {
		d, err := pushRelease(ctx, c, root, sources[kind].host)
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
		{"referrers API -> fallback tag", "api", "fallback", sources["api"].host + "/staging/fleet:v1"},
		{"fallback tag -> referrers API", "fallback", "api", sources["fallback"].host + "/staging/fleet:v1"},
	}

	fmt.Printf("release: %s (2 platforms + 2 BuildKit attestation manifests, signed in both formats, SLSA provenance as bundles + .att)\n", releaseDigest)
	fmt.Printf("at the source: %d entries (tree manifests, referrers, legacy tags); %d runs per tool, median time\n\n", len(want["api"]), runs)
	for _, sc := range scenarios {
		fmt.Printf("%s (source: %s, destination: %s)\n", sc.name, kindName(sc.srcKind), kindName(sc.dstKind))
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "tool\ttime\tx seal\tbytes moved\tx seal\trequests\tcopied at destination\tre-run time\tre-run bytes\tre-run requests\t")
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
			fmt.Fprintf(w, "%s\t%s\t%.2f\t%s\t%.2f\t%d\t%s\t%s\t%s\t%d\t\n", tl.name,
				m.took.Round(time.Millisecond), m.took.Seconds()/base.took.Seconds(),
				kib(m.bytes), float64(m.bytes)/float64(base.bytes), m.requests, m.complete,
				m.retook.Round(time.Millisecond), kib(m.rebytes), m.requests2)
		}
		w.Flush()
		fmt.Println()
	}
	fmt.Println("bytes moved: request + response bodies through the proxies in front of both registries.")
	fmt.Println("copied at destination: the source's tree manifests, referrers and legacy tags found at the destination")
	fmt.Println("(referrers through the API or the fallback tag, whichever the destination has).")
	return nil
}

func kindName(kind string) string {
	if kind == "api" {
		return "go-containerregistry registry, referrers API"
	}
	return "CNCF Distribution v3, no referrers API"
}

func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// runOnce copies with a fresh destination, then again.
func runOnce(ctx context.Context, c *oci.Client, tl tool, sc scenario, src *counted, home string, want []string) sample {
	reg, stop, err := startRegistry(sc.dstKind)
	if err != nil {
		return sample{err: err}
	}
	defer stop()
	dst, err := newCounted(reg)
	if err != nil {
		return sample{err: err}
	}
	defer dst.close()
	// regctl needs to be told these registries speak plain HTTP.
	if strings.HasPrefix(tl.name, "regctl") {
		for _, h := range []string{src.host, dst.host} {
			if out, err := toolCmd(tl.bin, home, "registry", "set", h, "--tls", "disabled").CombinedOutput(); err != nil {
				return sample{err: fmt.Errorf("regctl registry set: %v\n%s", err, out)}
			}
		}
	}
	dstImage := dst.host + "/prime/fleet:v1"
	var s sample
	for pass := range 2 {
		src.reset()
		dst.reset()
		cmd := toolCmd(tl.bin, home, tl.args(sc.srcImage, dstImage)...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			return sample{err: fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)}
		}
		bytes := src.bytes.Load() + dst.bytes.Load()
		reqs := src.requests.Load() + dst.requests.Load()
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

func toolCmd(bin, home string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}
	return cmd
}

func median(ss []sample) sample {
	sort.Slice(ss, func(i, j int) bool { return ss[i].took < ss[j].took })
	m := ss[len(ss)/2]
	re := slices.Clone(ss)
	sort.Slice(re, func(i, j int) bool { return re[i].retook < re[j].retook })
	m.retook = re[len(re)/2].retook
	return m
}

// startRegistry starts an in-process registry on 127.0.0.1: "api" is
// go-containerregistry's with the referrers API, "fallback" CNCF
// Distribution (seal's embedded registry), without it.
func startRegistry(kind string) (string, func(), error) {
	if kind == "fallback" {
		s, err := registry.Start(context.Background(), registry.Config{Addr: "127.0.0.1:0", Memory: true})
		if err != nil {
			return "", nil, err
		}
		return s.Addr(), func() { _ = s.Close(context.Background()) }, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: ggcrregistry.New(ggcrregistry.WithReferrersSupport(true),
		ggcrregistry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// counted is a reverse proxy on 127.0.0.1 in front of a registry that
// counts requests and the bytes of request and response bodies.
type counted struct {
	host     string
	srv      *http.Server
	bytes    atomic.Int64
	requests atomic.Int64
}

func newCounted(upstream string) (*counted, error) {
	up := &url.URL{Scheme: "http", Host: upstream}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &counted{host: ln.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host // absolute upload locations come back here
		},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				if u, err := url.Parse(loc); err == nil && u.Host == upstream {
					u.Host = p.host
					resp.Header.Set("Location", u.String())
				}
			}
			resp.Body = &countingBody{rc: resp.Body, n: &p.bytes}
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if r.Body != nil {
			r.Body = &countingBody{rc: r.Body, n: &p.bytes}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *counted) reset() { p.bytes.Store(0); p.requests.Store(0) }
func (p *counted) close() { _ = p.srv.Close() }

type countingBody struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

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
