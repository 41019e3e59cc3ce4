package buildkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/fault"
)

func mustBuild(t testing.TB, o Options) *Image {
	t.Helper()
	im, err := Build(o)
	if err != nil {
		t.Fatalf("Build(%s %s): %v", o.Component, platformString(o.Platform), err)
	}
	return im
}

// Given the options a fixture was built with, the platform image (layer,
// config, manifest) is byte-identical to BuildKit's, and the index, the
// attestation manifest and the provenance statement are byte-identical up to
// the values BuildKit draws per run (invocation ID, times, LLB digests) and
// the digests that follow from them.
func TestMatchesFixtureBytes(t *testing.T) {
	for _, fx := range fixtureBuilds(t) {
		t.Run(fx.dir, func(t *testing.T) {
			fget, ftop := fixtureBlobs(t, fx.dir)
			want := walk(t, fget, ftop)
			im := mustBuild(t, fx.opts)
			got := walk(t, imageBlobs(t, im), im.Digest())

			if im.PlatformDigest() != want.imageDigest {
				t.Errorf("platform manifest %s, BuildKit's is %s", im.PlatformDigest(), want.imageDigest)
			}
			for _, c := range []struct {
				name      string
				got, want []byte
			}{
				{"layer", got.layer, want.layer},
				{"image config", got.config, want.config},
				{"image manifest", got.image, want.image},
				{"attestation config", got.attConfig, replaceDesc(want.attConfig, want.statementDigest, got.statementDigest)},
				{"index", got.index, replaceDesc(want.index, want.attDigest, got.attDigest, len(want.att), len(got.att))},
				{"attestation manifest", got.att, replaceDesc(replaceDesc(want.att, want.attConfigDigest, got.attConfigDigest),
					want.statementDigest, got.statementDigest, len(want.statement), len(got.statement))},
				{"statement (per-run values masked)", maskRun(t, got.statement), maskRun(t, want.statement)},
			} {
				if !bytes.Equal(c.got, c.want) {
					t.Errorf("%s differs from BuildKit's:\ngot  %s\nwant %s", c.name, c.got, c.want)
				}
			}
		})
	}
}

// replaceDesc puts the generated digest (and size) where the fixture has its
// own, so what remains compared is everything else, byte for byte.
func replaceDesc(raw []byte, from, to v1.Hash, sizes ...int) []byte {
	s := strings.ReplaceAll(string(raw), from.Hex, to.Hex)
	if len(sizes) == 2 {
		s = strings.ReplaceAll(s, fmt.Sprintf(`"size": %d`, sizes[0]), fmt.Sprintf(`"size": %d`, sizes[1]))
	}
	return []byte(s)
}

var (
	invocationRE = regexp.MustCompile(`"invocationId":"[a-z0-9]{25}"`)
	startedRE    = regexp.MustCompile(`"startedOn":"[0-9TZ:.-]+"`)
	finishedRE   = regexp.MustCompile(`"finishedOn":"[0-9TZ:.-]+"`)
	mappingRE    = regexp.MustCompile(`"digestMapping":\{[^}]*\}`)
	mappingEntry = regexp.MustCompile(`^"sha256:[0-9a-f]{64}":"(step[0-9]+)"$`)
)

// maskRun replaces the values BuildKit draws per run, checking their form:
// the invocation ID, the start and finish times, and the digests of the LLB
// steps (kept: which steps are mapped).
func maskRun(t *testing.T, st []byte) []byte {
	t.Helper()
	s := string(st)
	for _, re := range []*regexp.Regexp{invocationRE, startedRE, finishedRE} {
		if n := len(re.FindAllString(s, -1)); n != 1 {
			t.Errorf("%s matches %d times in %s", re, n, st)
		}
	}
	s = invocationRE.ReplaceAllString(s, `"invocationId":"<id>"`)
	s = startedRE.ReplaceAllString(s, `"startedOn":"<time>"`)
	s = finishedRE.ReplaceAllString(s, `"finishedOn":"<time>"`)
	s = mappingRE.ReplaceAllStringFunc(s, func(m string) string {
		body := strings.TrimSuffix(strings.TrimPrefix(m, `"digestMapping":{`), "}")
		var steps []string
		for _, e := range strings.Split(body, ",") {
			sm := mappingEntry.FindStringSubmatch(e)
			if sm == nil {
				t.Errorf("digestMapping entry %q is not a sha256 digest mapped to a step", e)
				continue
			}
			steps = append(steps, sm[1])
		}
		sort.Strings(steps)
		return `"digestMapping":{` + strings.Join(steps, ",") + `}`
	})
	return []byte(s)
}

// A build with other content (component, source, tag, file, time) has the
// fixture's layout: the same documents with the same keys at every level,
// the same media types, artifact type, annotations, predicate and build
// types; only values like names, digests and times differ.
func TestSameLayoutAsFixture(t *testing.T) {
	for _, fx := range fixtureBuilds(t) {
		if !strings.HasPrefix(fx.dir, "fleet__") && !strings.HasPrefix(fx.dir, "oldlayout__") {
			continue
		}
		t.Run(fx.dir, func(t *testing.T) {
			fget, ftop := fixtureBlobs(t, fx.dir)
			want := walk(t, fget, ftop)
			im := mustBuild(t, Options{
				Component: "acme/server",
				Source:    "https://git.example.org/acme/server",
				Ref:       "registry.example.org/acme/server:v2.3.4-" + fx.opts.Platform.Architecture,
				Platform:  fx.opts.Platform,
				Content:   []byte("something else entirely\n"),
				Layout:    fx.opts.Layout,
				Created:   time.Date(2031, 5, 6, 7, 8, 9, 10, time.UTC),
			})
			got := walk(t, imageBlobs(t, im), im.Digest())
			if bytes.Equal(got.statement, want.statement) || got.imageDigest == want.imageDigest {
				t.Fatal("the generated build is the fixture itself; this test needs other content")
			}
			for _, d := range []struct {
				name      string
				got, want []byte
			}{
				{"index", got.index, want.index},
				{"image manifest", got.image, want.image},
				{"image config", got.config, want.config},
				{"attestation manifest", got.att, want.att},
				{"attestation config", got.attConfig, want.attConfig},
				{"statement", got.statement, want.statement},
			} {
				for _, diff := range shapeDiff(d.name, shape(decode(t, d.want), false), shape(decode(t, d.got), false)) {
					t.Error(diff)
				}
			}
			if !bytes.Equal(got.layer[:10], want.layer[:10]) {
				t.Errorf("gzip header %x, BuildKit's %x", got.layer[:10], want.layer[:10])
			}
			if g, w := tarHeaders(t, got.layer), tarHeaders(t, want.layer); g != w {
				t.Errorf("layer tar headers %s, BuildKit's %s", g, w)
			}
		})
	}
}

// tarHeaders describes a layer's entries without their times and sizes.
func tarHeaders(t *testing.T, gz []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %c %o %d:%d %q:%q %v", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.Format))
	}
	return strings.Join(out, "; ")
}

func TestDeterministic(t *testing.T) {
	base := Options{Component: "example/server", Platform: linuxAMD64, SBOM: true}
	ref := mustBuild(t, base)
	again := mustBuild(t, base)
	if again.Digest() != ref.Digest() || !bytes.Equal(again.RawIndex(), ref.RawIndex()) ||
		!bytes.Equal(again.Statement(), ref.Statement()) || !bytes.Equal(again.SBOM(), ref.SBOM()) {
		t.Fatalf("the same options gave %s, then %s", ref.Digest(), again.Digest())
	}

	tests := []struct {
		name          string
		change        func(*Options)
		samePlatImage bool // the platform image manifest stays the same
	}{
		{"another platform", func(o *Options) { o.Platform = linuxARM64 }, false},
		{"another component", func(o *Options) { o.Component = "example/server-agent" }, false},
		{"another source", func(o *Options) { o.Source = "https://github.com/example/other" }, false},
		{"another content", func(o *Options) { o.Content = []byte("other\n") }, false},
		{"another time", func(o *Options) { o.Created = DefaultCreated.Add(time.Second) }, false},
		{"another tag", func(o *Options) { o.Ref = "127.0.0.1:5000/example/server:v2" }, true},
		{"another layout", func(o *Options) { o.Layout = LayoutDummyConfig }, true},
		{"no SBOM", func(o *Options) { o.SBOM = false }, true},
		{"a revision", func(o *Options) { o.Revision = "0123456789abcdef0123456789abcdef01234567" }, true},
		{"a builder id", func(o *Options) { o.BuilderID = "https://github.com/example/server/actions/runs/1" }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.change(&o)
			im := mustBuild(t, o)
			if im.Digest() == ref.Digest() || im.AttestationDigest() == ref.AttestationDigest() {
				t.Errorf("index %s / attestation %s unchanged", im.Digest(), im.AttestationDigest())
			}
			if same := im.PlatformDigest() == ref.PlatformDigest(); same != tc.samePlatImage {
				t.Errorf("platform manifest unchanged = %v, want %v", same, tc.samePlatImage)
			}
			if twice := mustBuild(t, o); twice.Digest() != im.Digest() {
				t.Errorf("not deterministic: %s then %s", im.Digest(), twice.Digest())
			}
		})
	}
}

// The statement's subject is the platform manifest, named as BuildKit names
// the pushed tag; the defaults are filled in.
func TestDefaults(t *testing.T) {
	im := mustBuild(t, Options{Component: "example/server", Platform: linuxARM64})
	var st struct {
		Subject []subject `json:"subject"`
	}
	mustUnmarshal(t, im.Statement(), &st)
	want := subject{Name: "pkg:docker/example/server@latest?platform=linux%2Farm64", Digest: map[string]string{"sha256": im.PlatformDigest().Hex}}
	if len(st.Subject) != 1 || st.Subject[0].Name != want.Name || st.Subject[0].Digest["sha256"] != want.Digest["sha256"] {
		t.Errorf("subject %+v, want %+v", st.Subject, want)
	}
	b := walk(t, imageBlobs(t, im), im.Digest())
	var cfg struct {
		Created time.Time `json:"created"`
		Config  struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	mustUnmarshal(t, b.config, &cfg)
	if src := cfg.Config.Labels["org.opencontainers.image.source"]; src != "https://github.com/example/server" {
		t.Errorf("source label %q", src)
	}
	if !cfg.Created.Equal(DefaultCreated) {
		t.Errorf("created %s, want %s", cfg.Created, DefaultCreated)
	}
	if got := layerFile(t, b.layer); got != "hello from example/server linux/arm64\n" {
		t.Errorf("/hello.txt holds %q", got)
	}
	if im.Ref() != "example/server:latest" || im.Platform().Architecture != "arm64" {
		t.Errorf("Ref %q, Platform %+v", im.Ref(), im.Platform())
	}
}

func layerFile(t *testing.T, gz []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A platform with a variant is spelled as BuildKit spells it everywhere:
// the index platform, the config (variant sorted last), the build argument,
// the copied file, and the purl.
func TestVariant(t *testing.T) {
	p := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	im := mustBuild(t, Options{Component: "example/server", Ref: "ghcr.io/example/server:v1", Platform: p})
	b := walk(t, imageBlobs(t, im), im.Digest())
	var idx v1.IndexManifest
	mustUnmarshal(t, b.index, &idx)
	if got := idx.Manifests[0].Platform; got == nil || got.Variant != "v7" || got.Architecture != "arm" {
		t.Errorf("index platform %+v", got)
	}
	for _, want := range []string{`"rootfs":{`, `},"variant":"v7"}`, `"ARG TARGETVARIANT=v7"`, `"COPY hello-armv7.txt /hello.txt # buildkit"`} {
		if !bytes.Contains(b.config, []byte(want)) {
			t.Errorf("config lacks %s: %s", want, b.config)
		}
	}
	for _, want := range []string{`"name":"pkg:docker/ghcr.io/example/server@v1?platform=linux%2Farm%2Fv7"`, `"src":"/hello-armv7.txt"`} {
		if !bytes.Contains(im.Statement(), []byte(want)) {
			t.Errorf("statement lacks %s", want)
		}
	}
}

// With a revision the provenance carries it where BuildKit puts the vcs:
// options buildx sends, and nothing else changes shape.
func TestRevision(t *testing.T) {
	o := Options{Component: "example/server-agent", Source: "https://github.com/example/server", Platform: linuxAMD64}
	plain := mustBuild(t, o)
	o.Revision = "0123456789abcdef0123456789abcdef01234567"
	im := mustBuild(t, o)
	var st struct {
		Predicate struct {
			RunDetails struct {
				Metadata struct {
					BuildKit struct {
						VCS map[string]string `json:"vcs"`
					} `json:"buildkit_metadata"`
				} `json:"metadata"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	mustUnmarshal(t, im.Statement(), &st)
	want := map[string]string{"revision": o.Revision, "source": o.Source}
	if got := st.Predicate.RunDetails.Metadata.BuildKit.VCS; len(got) != 2 || got["revision"] != want["revision"] || got["source"] != want["source"] {
		t.Errorf("vcs %v, want %v", got, want)
	}
	diffs := shapeDiff("statement", shape(decode(t, plain.Statement()), false), shape(decode(t, im.Statement()), false))
	if len(diffs) != 1 || !strings.Contains(diffs[0], "buildkit_metadata/vcs: only in the generated build") {
		t.Errorf("shape changes %q, want only the added vcs", diffs)
	}
}

// The attestation manifests read back through seal's own BuildKit parser
// (what `seal attest --from-buildkit` uses), in both layouts, with and
// without an SBOM: provenance last, as BuildKit orders them.
func TestReadByAttestationParser(t *testing.T) {
	for _, l := range []Layout{LayoutArtifact, LayoutDummyConfig} {
		for _, sbom := range []bool{false, true} {
			for _, prov := range []Provenance{ProvenanceMax, ProvenanceNone} {
				if prov == ProvenanceNone && !sbom {
					continue
				}
				name := fmt.Sprintf("%s/sbom=%v/provenance=%v", l, sbom, prov == ProvenanceMax)
				t.Run(name, func(t *testing.T) {
					im := mustBuild(t, Options{Component: "example/server", Platform: linuxAMD64, Layout: l, SBOM: sbom, Provenance: prov})
					raw, _ := im.Blob(im.AttestationDigest())
					fetch := func(d v1.Descriptor) ([]byte, error) {
						b, ok := im.Blob(d.Digest)
						if !ok {
							return nil, fmt.Errorf("no blob %s", d.Digest)
						}
						return b, nil
					}
					atts, err := attestation.ParseBuildKitAttestation(raw, fetch, im.PlatformDigest())
					if err != nil {
						t.Fatal(err)
					}
					var want []string
					if sbom {
						want = append(want, PredicateSPDX)
					}
					if prov == ProvenanceMax {
						want = append(want, PredicateSLSAProvenance1)
					}
					var got []string
					for _, a := range atts {
						got = append(got, a.PredicateType)
						switch a.PredicateType {
						case PredicateSPDX:
							if !bytes.Equal(a.Raw, im.SBOM()) {
								t.Error("SBOM layer is not SBOM()")
							}
						case PredicateSLSAProvenance1:
							if !bytes.Equal(a.Raw, im.Statement()) {
								t.Error("provenance layer is not Statement()")
							}
						}
					}
					if strings.Join(got, " ") != strings.Join(want, " ") {
						t.Errorf("predicate types %v, want %v", got, want)
					}
					if (im.Statement() != nil) != (prov == ProvenanceMax) || (im.SBOM() != nil) != sbom {
						t.Errorf("Statement() set %v, SBOM() set %v", im.Statement() != nil, im.SBOM() != nil)
					}
				})
			}
		}
	}
}

// The SBOM is an SPDX 2.3 document with the fields SPDX requires, about
// the file the image holds.
func TestSBOMDocument(t *testing.T) {
	im := mustBuild(t, Options{Component: "example/server", Platform: linuxAMD64, SBOM: true, Content: []byte("abc")})
	var st struct {
		Type          string    `json:"_type"`
		PredicateType string    `json:"predicateType"`
		Subject       []subject `json:"subject"`
		Predicate     struct {
			SPDXVersion, DataLicense, SPDXID, Name, DocumentNamespace string
			CreationInfo                                              struct {
				Creators []string
				Created  string
			}
			Packages []struct {
				Name, SPDXID, DownloadLocation string
				FilesAnalyzed                  *bool
			}
			Files []struct {
				FileName, SPDXID string
				Checksums        []struct{ Algorithm, ChecksumValue string }
			}
			Relationships []struct{ SpdxElementID, RelatedSpdxElement, RelationshipType string }
		} `json:"predicate"`
	}
	dec := json.NewDecoder(bytes.NewReader(im.SBOM()))
	if err := dec.Decode(&st); err != nil {
		t.Fatal(err)
	}
	p := st.Predicate
	if st.Type != StatementTypeV1 || st.PredicateType != PredicateSPDX || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != im.PlatformDigest().Hex {
		t.Errorf("statement header %q %q %+v", st.Type, st.PredicateType, st.Subject)
	}
	if p.SPDXVersion != "SPDX-2.3" || p.DataLicense != "CC0-1.0" || p.SPDXID != "SPDXRef-DOCUMENT" || p.Name == "" ||
		!strings.HasPrefix(p.DocumentNamespace, "https://") || len(p.CreationInfo.Creators) == 0 {
		t.Errorf("document header %+v", p)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", p.CreationInfo.Created); err != nil {
		t.Errorf("created %q: %v", p.CreationInfo.Created, err)
	}
	idRE := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	if len(p.Packages) != 1 || !idRE.MatchString(p.Packages[0].SPDXID) || p.Packages[0].DownloadLocation == "" || p.Packages[0].FilesAnalyzed == nil {
		t.Errorf("packages %+v", p.Packages)
	}
	// sha1("abc") and sha256("abc"), the standard test vectors.
	if len(p.Files) != 1 || p.Files[0].FileName != "/hello.txt" || !idRE.MatchString(p.Files[0].SPDXID) || len(p.Files[0].Checksums) != 2 ||
		p.Files[0].Checksums[0] != (struct{ Algorithm, ChecksumValue string }{"SHA1", "a9993e364706816aba3e25717850c26c9cd0d89d"}) ||
		p.Files[0].Checksums[1] != (struct{ Algorithm, ChecksumValue string }{"SHA256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}) {
		t.Errorf("files %+v", p.Files)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, pk := range p.Packages {
		ids[pk.SPDXID] = true
	}
	for _, f := range p.Files {
		ids[f.SPDXID] = true
	}
	if len(p.Relationships) != 2 || p.Relationships[0].RelationshipType != "DESCRIBES" {
		t.Errorf("relationships %+v", p.Relationships)
	}
	for _, r := range p.Relationships {
		if !ids[r.SpdxElementID] || !ids[r.RelatedSpdxElement] {
			t.Errorf("relationship %+v names an unknown element", r)
		}
	}
}

// Through go-containerregistry's interfaces the platform image is
// consistent: each layer's content hashes to its digest, its uncompressed
// content to its diff ID, which is the config's; the config and manifest
// hash to their names.
func TestPlatformImageConsistent(t *testing.T) {
	for _, p := range []v1.Platform{linuxAMD64, linuxARM64} {
		im := mustBuild(t, Options{Component: "example/server", Platform: p})
		img, err := im.Index().Image(im.PlatformDigest())
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil || cf.OS != p.OS || cf.Architecture != p.Architecture {
			t.Fatalf("%s: config %+v, %v", platformString(p), cf, err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
			t.Fatalf("%s: %d layers (%v), %d diff IDs", platformString(p), len(layers), err, len(cf.RootFS.DiffIDs))
		}
		l := layers[0]
		if got, want := hashOf(t, l.Compressed), mustHash(t, l.Digest); got != want {
			t.Errorf("layer content hashes to %s, digest says %s", got, want)
		}
		if got, want := hashOf(t, l.Uncompressed), cf.RootFS.DiffIDs[0]; got != want {
			t.Errorf("uncompressed layer hashes to %s, config diff ID is %s", got, want)
		}
		if d, _ := l.DiffID(); d != cf.RootFS.DiffIDs[0] {
			t.Errorf("DiffID %s, config says %s", d, cf.RootFS.DiffIDs[0])
		}
		raw, _ := img.RawConfigFile()
		if name, _ := img.ConfigName(); name != digestOf(raw) {
			t.Errorf("config name %s, content hashes to %s", name, digestOf(raw))
		}
		rm, _ := img.RawManifest()
		if digestOf(rm) != im.PlatformDigest() {
			t.Errorf("manifest hashes to %s, not %s", digestOf(rm), im.PlatformDigest())
		}
	}
}

func hashOf(t *testing.T, open func() (io.ReadCloser, error)) v1.Hash {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustHash(t *testing.T, f func() (v1.Hash, error)) v1.Hash {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBuildErrors(t *testing.T) {
	ok := Options{Component: "example/server", Platform: linuxAMD64}
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no component", func(o *Options) { o.Component = "" }, "no component"},
		{"no architecture", func(o *Options) { o.Platform = v1.Platform{OS: "linux"} }, "architecture"},
		{"digest reference", func(o *Options) {
			o.Ref = "example/server@sha256:6509be241a5e19fab8c25688858fde2c2212ce247ba22c75213f15dc0d0e20e0"
		}, "digest"},
		{"bad reference", func(o *Options) { o.Ref = "Example/Server:v1" }, "Example/Server"},
		{"nothing to attest", func(o *Options) { o.Provenance = ProvenanceNone }, "no provenance and no SBOM"},
		{"unknown layout", func(o *Options) { o.Layout = Layout(7) }, "layout"},
		{"white space in source", func(o *Options) { o.Source = "https://x y" }, "white space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || fault.KindOf(err) != fault.Input {
				t.Errorf("error %v (kind %v), want an input error mentioning %q", err, fault.KindOf(err), tc.want)
			}
		})
	}
}

func TestSubjectName(t *testing.T) {
	tests := []struct {
		ref  string
		p    v1.Platform
		want string
	}{
		{"127.0.0.1:5055/example/fleet:v0.1.0-linux-amd64", linuxAMD64, "pkg:docker/127.0.0.1%3A5055/example/fleet@v0.1.0-linux-amd64?platform=linux%2Famd64"},
		{"ghcr.io/foo/bar:v2", linuxARM64, "pkg:docker/ghcr.io/foo/bar@v2?platform=linux%2Farm64"},
		{"docker.io/library/alpine:3.20", linuxAMD64, "pkg:docker/alpine@3.20?platform=linux%2Famd64"},
		{"alpine", linuxAMD64, "pkg:docker/alpine@latest?platform=linux%2Famd64"},
		{"user/test:v2", linuxAMD64, "pkg:docker/user/test@v2?platform=linux%2Famd64"},
		{"localhost:5000/a/b/c:t_1", v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "pkg:docker/localhost%3A5000/a/b/c@t_1?platform=linux%2Farm%2Fv6"},
	}
	for _, tc := range tests {
		got, err := subjectName(tc.ref, tc.p)
		if err != nil || got != tc.want {
			t.Errorf("subjectName(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	o := Options{Component: "example/server", Platform: linuxAMD64, SBOM: true}
	for i := 0; b.Loop(); i++ {
		o.Created = DefaultCreated.Add(time.Duration(i) * time.Second)
		if _, err := Build(o); err != nil {
			b.Fatal(err)
		}
	}
}
