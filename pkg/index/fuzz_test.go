package index

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// The fuzz targets read through memFetcher: every blob of every BuildKit
// fixture, plus the fuzzed manifests, in memory, so that one execution costs
// microseconds and a fuzzed index can point at real manifests and configs.
var (
	fuzzBlobsOnce sync.Once
	fuzzBlobs     map[v1.Hash][]byte
	fuzzBlobsErr  error
)

func fixtureBlobs(t testing.TB) map[v1.Hash][]byte {
	t.Helper()
	fuzzBlobsOnce.Do(func() {
		fuzzBlobs = map[v1.Hash][]byte{}
		files, err := filepath.Glob(filepath.Join(fixtureRoot, "*", "blobs", "sha256", "*"))
		if err != nil || len(files) == 0 {
			fuzzBlobsErr = err
			return
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				fuzzBlobsErr = err
				return
			}
			fuzzBlobs[digestOf(b)] = b
		}
	})
	if fuzzBlobsErr != nil || len(fuzzBlobs) == 0 {
		t.Fatalf("fixture blobs: %v (%d read)", fuzzBlobsErr, len(fuzzBlobs))
	}
	return fuzzBlobs
}

// memFetcher is a Fetcher over the fixture blobs and a few extra documents.
// It checks nothing: the package must.
type memFetcher struct {
	base  map[v1.Hash][]byte
	extra map[v1.Hash][]byte
}

func newMemFetcher(t testing.TB, extra ...[]byte) *memFetcher {
	m := &memFetcher{base: fixtureBlobs(t), extra: map[v1.Hash][]byte{}}
	for _, b := range extra {
		m.extra[digestOf(b)] = b
	}
	return m
}

func (m *memFetcher) read(h v1.Hash) ([]byte, error) {
	if b, ok := m.extra[h]; ok {
		return b, nil
	}
	if b, ok := m.base[h]; ok {
		return b, nil
	}
	return nil, fault.Inputf("%s not found", h)
}

func (m *memFetcher) Manifest(_ context.Context, h v1.Hash) ([]byte, string, error) {
	b, err := m.read(h)
	if err != nil {
		return nil, "", err
	}
	return b, string(probeMediaType(b)), nil
}

func (m *memFetcher) Blob(_ context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	b, err := m.read(d.Digest)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fault.Inputf("%s: over %d bytes", d.Digest, max)
	}
	return b, nil
}

// probeMediaType is the mediaType field of a JSON document, if it has one.
func probeMediaType(b []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	_ = json.Unmarshal(b, &probe)
	return probe.MediaType
}

// rootDesc is what a registry resolves a reference to raw to.
func rootDesc(raw []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: probeMediaType(raw), Size: int64(len(raw)), Digest: digestOf(raw)}
}

func readFixtureBlob(f testing.TB, fixture, hex string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureRoot, fixture, "blobs", "sha256", hex))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// fuzzSeeds are the fixtures' indexes and image manifests, and indexes built
// over them the way users combine them (nested, Docker media types, an
// attestation listed before its image, an entry without a platform).
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, fx := range []string{fleetAMD64, fleetARM64, agentAMD64, agentARM64, oldlayoutAMD64, oldlayoutARM64} {
		seeds = append(seeds,
			readFixtureBlob(f, fx, fixtures[fx].index),
			readFixtureBlob(f, fx, fixtures[fx].image))
	}
	desc := func(fx, hex string) v1.Descriptor {
		b := readFixtureBlob(f, fx, hex)
		return v1.Descriptor{MediaType: probeMediaType(b), Size: int64(len(b)), Digest: digestOf(b)}
	}
	enc := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	nested := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
		desc(fleetAMD64, fixtures[fleetAMD64].index), desc(fleetARM64, fixtures[fleetARM64].index)}}
	seeds = append(seeds, enc(nested))

	var inner v1.IndexManifest
	if err := json.Unmarshal(readFixtureBlob(f, oldlayoutAMD64, fixtures[oldlayoutAMD64].index), &inner); err != nil {
		f.Fatal(err)
	}
	flat := inner
	flat.Manifests = append([]v1.Descriptor{}, inner.Manifests...)
	noPlatform := flat.Manifests[0]
	noPlatform.Platform = nil
	flat.Manifests = append(flat.Manifests, noPlatform)
	seeds = append(seeds, enc(flat))

	reversed := inner
	reversed.Manifests = []v1.Descriptor{inner.Manifests[1], inner.Manifests[0]}
	seeds = append(seeds, enc(reversed))

	docker := inner
	docker.MediaType = types.DockerManifestList
	docker.Manifests = append([]v1.Descriptor{}, inner.Manifests...)
	for i := range docker.Manifests {
		docker.Manifests[i].MediaType = types.DockerManifestSchema2
	}
	seeds = append(seeds, enc(docker))
	return seeds
}

// FuzzMerge gathers two fuzzed manifests as sources (each may list the
// fixtures' manifests, which the fetcher holds) and merges them. Beyond not
// panicking: every error is an input error; an accepted index is flat, lists
// each digest once, lists every attestation after its platform manifest,
// has one manifest per platform, hashes to its descriptor, is produced
// byte-identically again, and merging it again as a source gives it back.
func FuzzMerge(f *testing.F) {
	seeds := fuzzSeeds(f)
	platforms := []string{"", "linux/amd64", "linux/arm64/v8", "windows/amd64:10.0", "bad"}
	for i, a := range seeds {
		b := seeds[(i+1)%len(seeds)]
		f.Add(a, b, platforms[i%len(platforms)])
	}
	f.Fuzz(func(t *testing.T, a, b []byte, platform string) {
		ctx := context.Background()
		fetch := newMemFetcher(t, a, b)
		var sources []Source
		for i, raw := range [][]byte{a, b} {
			ref := []string{"registry.test/fuzz/a:1", "registry.test/fuzz/b:1"}[i]
			src, err := Gather(ctx, fetch, ref, rootDesc(raw))
			if err != nil {
				mustBeInput(t, "Gather", err)
				continue
			}
			again, err := Gather(ctx, fetch, ref, rootDesc(raw))
			if err != nil || !bytes.Equal(jsonOf(t, src), jsonOf(t, again)) {
				t.Fatalf("Gather is not deterministic: %v", err)
			}
			sources = append(sources, src)
		}
		if len(sources) == 0 {
			return
		}
		var opts Options
		if platform != "" {
			p, err := ParsePlatform(platform)
			if err != nil {
				mustBeInput(t, "ParsePlatform", err)
			} else {
				opts.Platforms = []v1.Platform{p}
				if FormatPlatform(&p) != platform {
					t.Fatalf("ParsePlatform(%q) formats back as %q", platform, FormatPlatform(&p))
				}
			}
		}
		r, err := Merge(sources, opts)
		if err != nil {
			mustBeInput(t, "Merge", err)
			return
		}
		checkMerged(t, r)
		r2, err := Merge(sources, opts)
		if err != nil || !bytes.Equal(r.Raw, r2.Raw) {
			t.Fatalf("Merge is not deterministic: %v\n%s\n%s", err, r.Raw, r2.Raw)
		}
		// The merged index, pushed and given as the only source, merges
		// to itself.
		fetch.extra[r.Descriptor.Digest] = r.Raw
		src, err := Gather(ctx, fetch, "registry.test/fuzz/merged:1", r.Descriptor)
		if err != nil {
			t.Fatalf("the merged index does not gather: %v\n%s", err, r.Raw)
		}
		r3, err := Merge([]Source{src}, opts)
		if err != nil {
			t.Fatalf("the merged index does not merge again: %v\n%s", err, r.Raw)
		}
		if !bytes.Equal(r.Raw, r3.Raw) {
			t.Fatalf("merging the merged index changed it:\n%s\n%s", r.Raw, r3.Raw)
		}
	})
}

// FuzzDescribe describes a fuzzed manifest (which may list the fixtures'):
// errors are input errors, and an accepted tree is rooted at the manifest,
// encodes to JSON, and is the same when described again.
func FuzzDescribe(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		fetch := newMemFetcher(t, raw)
		tree, err := Describe(ctx, fetch, rootDesc(raw))
		if err != nil {
			mustBeInput(t, "Describe", err)
			return
		}
		if tree.Digest != digestOf(raw) || tree.Size != int64(len(raw)) {
			t.Fatalf("tree root %s (%d bytes) is not the manifest described", tree.Digest, tree.Size)
		}
		again, err := Describe(ctx, fetch, rootDesc(raw))
		if err != nil || !bytes.Equal(jsonOf(t, tree), jsonOf(t, again)) {
			t.Fatalf("Describe is not deterministic: %v", err)
		}
		tree.walk(func(n *Tree) {
			if n.Kind == "" {
				t.Fatalf("node %s has no kind", n.Digest)
			}
			if _, err := v1.NewHash(n.Digest.String()); err != nil {
				t.Fatalf("node with digest %q: %v", n.Digest, err)
			}
			if n.Kind == KindAttestation && n.Subject == nil && n.ArtifactType == ArtifactTypeAttestation {
				// The OCI-artifact layout always names its subject;
				// only the older layout may not.
				t.Logf("attestation %s without a subject", n.Digest)
			}
		})
	})
}

// checkMerged asserts what every merged index is, whatever its sources.
func checkMerged(t *testing.T, r *Result) {
	t.Helper()
	if digestOf(r.Raw) != r.Descriptor.Digest || r.Descriptor.Size != int64(len(r.Raw)) {
		t.Fatalf("descriptor %v does not describe Raw", r.Descriptor)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(r.Raw, &idx); err != nil {
		t.Fatalf("Raw does not parse: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != r.Descriptor.MediaType || !idx.MediaType.IsIndex() {
		t.Fatalf("Raw is schemaVersion %d, %s; descriptor says %s", idx.SchemaVersion, idx.MediaType, r.Descriptor.MediaType)
	}
	if len(idx.Manifests) != len(r.Entries) || len(idx.Manifests) == 0 {
		t.Fatalf("Raw lists %d manifests, Result has %d entries", len(idx.Manifests), len(r.Entries))
	}
	seen := map[v1.Hash]bool{}
	platforms := map[string]v1.Hash{}
	for i, d := range idx.Manifests {
		e := r.Entries[i]
		if d.Digest != e.Digest || e.Descriptor.Digest != d.Digest {
			t.Fatalf("manifest %d is %s, entry says %s", i, d.Digest, e.Digest)
		}
		if d.MediaType.IsIndex() {
			t.Fatalf("manifest %d (%s) is a nested index", i, d.Digest)
		}
		if seen[d.Digest] {
			t.Fatalf("%s listed twice", d.Digest)
		}
		seen[d.Digest] = true
		switch e.Kind {
		case KindImage:
			if !hasPlatform(d.Platform) {
				t.Fatalf("image %s without a platform", d.Digest)
			}
			k := platformKey(*d.Platform)
			if other, dup := platforms[k]; dup {
				t.Fatalf("platform %s: both %s and %s", FormatPlatform(d.Platform), other, d.Digest)
			}
			platforms[k] = d.Digest
		case KindAttestation:
			subj, ok := AttestationSubject(d)
			if !ok || e.Subject == nil || subj != *e.Subject {
				t.Fatalf("attestation %s: subject %v, entry says %v", d.Digest, subj, e.Subject)
			}
			if _, listed := platforms[platformKeyOf(r, subj)]; !listed || !seen[subj] {
				t.Fatalf("attestation %s listed before (or without) its subject %s", d.Digest, subj)
			}
		default:
			t.Fatalf("entry %s of kind %q", d.Digest, e.Kind)
		}
	}
	docker := true
	for _, d := range idx.Manifests {
		docker = docker && d.MediaType == types.DockerManifestSchema2
	}
	if docker != (idx.MediaType == types.DockerManifestList) {
		t.Fatalf("index media type %s for entries all Docker = %v", idx.MediaType, docker)
	}
}

// platformKeyOf is the platform key of the image entry h of r.
func platformKeyOf(r *Result, h v1.Hash) string {
	for _, e := range r.Entries {
		if e.Digest == h && e.Kind == KindImage {
			return platformKey(*e.Descriptor.Platform)
		}
	}
	return "\x00none"
}

func mustBeInput(t *testing.T, what string, err error) {
	t.Helper()
	if k := fault.KindOf(err); k != fault.Input {
		t.Fatalf("%s: error of kind %v, want input: %v", what, k, err)
	}
	if err.Error() == "" {
		t.Fatalf("%s: empty error message", what)
	}
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return b
}
