package index

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// img and att render the entries a fixture contributes, as summary does.
func img(fixture string) string {
	f := fixtures[fixture]
	return fmt.Sprintf("image %s %s", f.platform, f.image[:12])
}

func att(fixture string) string {
	f := fixtures[fixture]
	return fmt.Sprintf("attestation %s %s -> %s", f.platform, f.att[:12], f.image[:12])
}

func summary(r *Result) []string {
	var out []string
	for _, e := range r.Entries {
		s := fmt.Sprintf("%s %s %s", e.Kind, e.Platform, e.Digest.Hex[:12])
		if e.Subject != nil {
			s += " -> " + e.Subject.Hex[:12]
		}
		out = append(out, s)
	}
	return out
}

// checkResult asserts what every merge result must be, whatever the sources:
// Raw is a flat index with exactly the entries, hashing to Descriptor; no
// duplicates; attestation descriptors unchanged from their source and placed
// after the platform manifest they name; every entry is its source's descriptor.
func checkResult(t *testing.T, r *Result, sources []Source) {
	t.Helper()
	if got := digestOf(r.Raw); got != r.Descriptor.Digest || r.Descriptor.Size != int64(len(r.Raw)) {
		t.Fatalf("descriptor %v does not describe Raw (%s, %d bytes)", r.Descriptor, got, len(r.Raw))
	}
	var idx struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     types.MediaType `json:"mediaType"`
		Manifests     []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(r.Raw, &idx); err != nil {
		t.Fatalf("Raw: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != r.Descriptor.MediaType {
		t.Errorf("Raw has schemaVersion %d mediaType %s, descriptor says %s", idx.SchemaVersion, idx.MediaType, r.Descriptor.MediaType)
	}
	if len(idx.Manifests) != len(r.Entries) {
		t.Fatalf("Raw lists %d manifests, Result %d entries", len(idx.Manifests), len(r.Entries))
	}
	seen := map[v1.Hash]bool{}
	for i, d := range idx.Manifests {
		e := r.Entries[i]
		if !bytes.Equal(mustJSON(t, d), mustJSON(t, e.Descriptor)) || d.Digest != e.Digest {
			t.Errorf("manifest %d in Raw %s differs from entry %s", i, mustJSON(t, d), mustJSON(t, e.Descriptor))
		}
		if d.MediaType.IsIndex() {
			t.Errorf("manifest %d is a nested index %s", i, d.Digest)
		}
		if seen[d.Digest] {
			t.Errorf("manifest %s listed twice", d.Digest)
		}
		seen[d.Digest] = true
		if e.Kind == KindAttestation {
			subj, ok := AttestationSubject(d)
			if !ok || e.Subject == nil || subj != *e.Subject || !seen[subj] {
				t.Errorf("attestation %s: subject %v (entry %v) is not a platform manifest listed before it", d.Digest, subj, e.Subject)
			}
			if d.Platform == nil || d.Platform.OS != "unknown" || d.Platform.Architecture != "unknown" {
				t.Errorf("attestation %s: platform %v, want unknown/unknown", d.Digest, d.Platform)
			}
		}
		found := false
		for _, s := range sources {
			if s.Ref != e.Source {
				continue
			}
			for _, c := range s.Children {
				if c.Descriptor.Digest == e.Digest {
					found = bytes.Equal(mustJSON(t, c.Descriptor), mustJSON(t, d))
				}
			}
		}
		if !found {
			t.Errorf("entry %s: not the descriptor source %s gave", e.Digest, e.Source)
		}
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name    string
		sources func(t *testing.T) []Source
		want    []string
	}{
		{
			name: "fleet amd64 + arm64 (OCI artifact layout)",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, fleetAMD64), gatherFixture(t, fleetARM64)}
			},
			want: []string{img(fleetAMD64), att(fleetAMD64), img(fleetARM64), att(fleetARM64)},
		},
		{
			name: "older layout amd64 + arm64 (dummy config, no subject)",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, oldlayoutAMD64), gatherFixture(t, oldlayoutARM64)}
			},
			want: []string{img(oldlayoutAMD64), att(oldlayoutAMD64), img(oldlayoutARM64), att(oldlayoutARM64)},
		},
		{
			name: "both layouts mixed",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, oldlayoutAMD64), gatherFixture(t, agentARM64)}
			},
			want: []string{img(oldlayoutAMD64), att(oldlayoutAMD64), img(agentARM64), att(agentARM64)},
		},
		{
			name: "single image manifests, platform from config",
			sources: func(t *testing.T) []Source {
				return []Source{gatherImageOf(t, fleetAMD64), gatherImageOf(t, fleetARM64)}
			},
			want: []string{img(fleetAMD64), img(fleetARM64)},
		},
		{
			name: "index and single image manifest",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, agentAMD64), gatherImageOf(t, agentARM64)}
			},
			want: []string{img(agentAMD64), att(agentAMD64), img(agentARM64)},
		},
		{
			name: "image manifest also inside an index is listed once",
			sources: func(t *testing.T) []Source {
				return []Source{gatherImageOf(t, fleetAMD64), gatherFixture(t, fleetAMD64), gatherFixture(t, fleetAMD64)}
			},
			want: []string{img(fleetAMD64), att(fleetAMD64)},
		},
		{
			name: "argument order decides the order",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, fleetARM64), gatherFixture(t, fleetAMD64)}
			},
			want: []string{img(fleetARM64), att(fleetARM64), img(fleetAMD64), att(fleetAMD64)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := tt.sources(t)
			r, err := Merge(sources, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(r); !slices.Equal(got, tt.want) {
				t.Errorf("entries\n got %q\nwant %q", got, tt.want)
			}
			if r.Descriptor.MediaType != types.OCIImageIndex {
				t.Errorf("media type %s, want OCI index", r.Descriptor.MediaType)
			}
			checkResult(t, r, sources)
		})
	}
}

func TestMergeDeterministic(t *testing.T) {
	opts := Options{Annotations: map[string]string{
		"org.opencontainers.image.source":   "https://github.com/example/fleet",
		"org.opencontainers.image.version":  "v0.1.0",
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.title":    "fleet",
	}}
	merge := func(fx ...string) *Result {
		t.Helper()
		var sources []Source
		for _, f := range fx {
			sources = append(sources, gatherFixture(t, f)) // gathered afresh each time
		}
		r, err := Merge(sources, opts)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := merge(fleetAMD64, fleetARM64), merge(fleetAMD64, fleetARM64)
	if !bytes.Equal(a.Raw, b.Raw) || a.Descriptor.Digest != b.Descriptor.Digest {
		t.Errorf("same sources, different indexes:\n%s\n%s", a.Raw, b.Raw)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(a.Raw, &idx); err != nil || !maps(idx.Annotations, opts.Annotations) {
		t.Errorf("index annotations %v, want %v (%v)", idx.Annotations, opts.Annotations, err)
	}
	r1, r2 := merge(fleetARM64, fleetAMD64), merge(fleetARM64, fleetAMD64)
	if r1.Descriptor.Digest == a.Descriptor.Digest {
		t.Errorf("reversed sources gave the same index %s", a.Descriptor.Digest)
	}
	if !bytes.Equal(r1.Raw, r2.Raw) {
		t.Errorf("reversed sources, different indexes:\n%s\n%s", r1.Raw, r2.Raw)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// A merged index is itself a valid source: merging it again, alone, with
// itself or with one of its own inputs gives the same index.
func TestMergeIdempotent(t *testing.T) {
	ctx := context.Background()
	first, err := Merge([]Source{gatherFixture(t, fleetAMD64), gatherFixture(t, fleetARM64)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	repo := newStore(t, fleetAMD64, fleetARM64) // the target repository after a push
	d := repo.put(first.Raw, first.Descriptor.MediaType)
	const ref = "registry.test/example/fleet:v0.1.0"
	merged, err := Gather(ctx, repo, ref, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Children) != 4 {
		t.Fatalf("merged index gathered as %d children, want 4", len(merged.Children))
	}
	for name, sources := range map[string][]Source{
		"alone":                 {merged},
		"with itself":           {merged, merged},
		"after one input":       {gatherFixture(t, fleetAMD64), merged},
		"before its own inputs": {merged, gatherFixture(t, fleetARM64), gatherFixture(t, fleetAMD64)},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Merge(sources, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Raw, first.Raw) {
				t.Errorf("got\n%s\nwant\n%s", r.Raw, first.Raw)
			}
			checkResult(t, r, sources)
		})
	}
}

// platformSources builds sources by hand for platform rules that no fixture
// covers (variants, os.version): Merge is pure, it reads nothing.
func platformSources(t *testing.T, platforms ...string) []Source {
	t.Helper()
	var out []Source
	for _, s := range platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 500, Digest: digestOf([]byte(s)), Platform: &p}
		out = append(out, Source{Ref: "registry.test/x:" + s, Descriptor: d, Children: []Child{{Descriptor: d, Kind: KindImage}}})
	}
	return out
}

func platformsOf(r *Result) []string {
	var out []string
	for _, e := range r.Entries {
		out = append(out, e.Platform)
	}
	return out
}

func TestMergePlatformFilter(t *testing.T) {
	fleet := func(t *testing.T) []Source {
		return []Source{gatherFixture(t, fleetAMD64), gatherFixture(t, fleetARM64)}
	}
	tests := []struct {
		name    string
		sources func(t *testing.T) []Source
		filter  []string
		want    []string // summary, or platforms for hand-built sources
		byPlat  bool
		wantErr []string
	}{
		{name: "arm64 keeps its attestation", sources: fleet, filter: []string{"linux/arm64"},
			want: []string{img(fleetARM64), att(fleetARM64)}},
		{name: "arm64/v8 is arm64", sources: fleet, filter: []string{"linux/arm64/v8"},
			want: []string{img(fleetARM64), att(fleetARM64)}},
		{name: "both, source order kept", sources: fleet, filter: []string{"linux/arm64", "linux/amd64"},
			want: []string{img(fleetAMD64), att(fleetAMD64), img(fleetARM64), att(fleetARM64)}},
		{name: "older layout", filter: []string{"linux/amd64"},
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, oldlayoutAMD64), gatherFixture(t, oldlayoutARM64)}
			},
			want: []string{img(oldlayoutAMD64), att(oldlayoutAMD64)}},
		{name: "a conflict on a dropped platform does not matter", filter: []string{"linux/arm64"},
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, fleetAMD64), gatherFixture(t, agentAMD64), gatherFixture(t, fleetARM64)}
			},
			want: []string{img(fleetARM64), att(fleetARM64)}},
		{name: "matches nothing", sources: fleet, filter: []string{"linux/s390x"},
			wantErr: []string{"linux/s390x", "available: linux/amd64, linux/arm64"}},
		{name: "one of two matches nothing", sources: fleet, filter: []string{"linux/amd64", "linux/arm/v7"},
			wantErr: []string{"linux/arm/v7", "available: linux/amd64, linux/arm64"}},
		{name: "variant-less filter keeps every variant", byPlat: true, filter: []string{"linux/arm"},
			sources: func(t *testing.T) []Source {
				return platformSources(t, "linux/arm/v6", "linux/arm/v7", "linux/arm64", "linux/amd64")
			},
			want: []string{"linux/arm/v6", "linux/arm/v7"}},
		{name: "variant filter keeps that variant", byPlat: true, filter: []string{"linux/arm/v7"},
			sources: func(t *testing.T) []Source {
				return platformSources(t, "linux/arm/v6", "linux/arm/v7", "linux/arm64")
			},
			want: []string{"linux/arm/v7"}},
		{name: "arm/v7 filter keeps arm without variant", byPlat: true, filter: []string{"linux/arm/v7"},
			sources: func(t *testing.T) []Source { return platformSources(t, "linux/arm/v6", "linux/arm") },
			want:    []string{"linux/arm"}},
		{name: "os.version filter", byPlat: true, filter: []string{"windows/amd64:10.0.20348.2700"},
			sources: func(t *testing.T) []Source {
				return platformSources(t, "windows/amd64:10.0.17763.6293", "windows/amd64:10.0.20348.2700", "linux/amd64")
			},
			want: []string{"windows/amd64:10.0.20348.2700"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			for _, f := range tt.filter {
				p, err := ParsePlatform(f)
				if err != nil {
					t.Fatal(err)
				}
				opts.Platforms = append(opts.Platforms, p)
			}
			sources := tt.sources(t)
			r, err := Merge(sources, opts)
			if tt.wantErr != nil {
				wantInput(t, err, tt.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := summary(r)
			if tt.byPlat {
				got = platformsOf(r)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			checkResult(t, r, sources)
		})
	}
}

func TestMergeConflict(t *testing.T) {
	tests := []struct {
		name    string
		sources func(t *testing.T) []Source
		wantErr []string // nil: no conflict
	}{
		{name: "fleet amd64 + fleet-agent amd64",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, fleetAMD64), gatherFixture(t, fleetARM64), gatherFixture(t, agentAMD64)}
			},
			wantErr: []string{"platform linux/amd64", refOf(fleetAMD64), refOf(agentAMD64), fixtures[fleetAMD64].image, fixtures[agentAMD64].image}},
		{name: "index + another image manifest",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, agentARM64), gatherImageOf(t, fleetARM64)}
			},
			wantErr: []string{"platform linux/arm64", refOf(agentARM64), imageRef(fleetARM64)}},
		{name: "arm64 and arm64/v8",
			sources: func(t *testing.T) []Source { return platformSources(t, "linux/arm64", "linux/arm64/v8") },
			wantErr: []string{"platform linux/arm64/v8", "registry.test/x:linux/arm64 ", "registry.test/x:linux/arm64/v8"}},
		{name: "arm and arm/v7",
			sources: func(t *testing.T) []Source { return platformSources(t, "linux/arm/v7", "linux/arm") },
			wantErr: []string{"platform linux/arm"}},
		{name: "arm/v6 and arm/v7 differ",
			sources: func(t *testing.T) []Source { return platformSources(t, "linux/arm/v6", "linux/arm/v7") }},
		{name: "windows os.versions differ",
			sources: func(t *testing.T) []Source {
				return platformSources(t, "windows/amd64:10.0.17763.6293", "windows/amd64:10.0.20348.2700")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Merge(tt.sources(t), Options{})
			if tt.wantErr != nil {
				wantInput(t, err, tt.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Entries) != 2 {
				t.Errorf("got %d entries, want 2", len(r.Entries))
			}
		})
	}
}

// dockerImage rewrites a fixture's image manifest with Docker schema 2 media
// types (same config and layer blobs) into s and returns its descriptor.
func dockerImage(t *testing.T, s *store, fixture string) v1.Descriptor {
	t.Helper()
	raw, err := s.read(hash(t, fixtures[fixture].image))
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m.MediaType = types.DockerManifestSchema2
	m.Config.MediaType = types.DockerConfigJSON
	for i := range m.Layers {
		m.Layers[i].MediaType = types.DockerLayer
	}
	return s.put(mustJSON(t, m), types.DockerManifestSchema2)
}

func TestMergeDockerMediaTypes(t *testing.T) {
	ctx := context.Background()
	dockerSource := func(t *testing.T, fixture string) Source {
		s := newStore(t, fixture)
		src, err := Gather(ctx, s, "registry.test/docker/"+fixture, dockerImage(t, s, fixture))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	tests := []struct {
		name    string
		sources func(t *testing.T) []Source
		opts    Options
		want    types.MediaType
		wantErr string
	}{
		{name: "all Docker: manifest list", want: types.DockerManifestList,
			sources: func(t *testing.T) []Source {
				return []Source{dockerSource(t, fleetAMD64), dockerSource(t, fleetARM64)}
			}},
		{name: "filtered to Docker ones: manifest list", want: types.DockerManifestList,
			opts: Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
			sources: func(t *testing.T) []Source {
				return []Source{dockerSource(t, fleetAMD64), gatherFixture(t, fleetARM64)}
			}},
		{name: "Docker and OCI image: OCI index", want: types.OCIImageIndex,
			sources: func(t *testing.T) []Source {
				return []Source{dockerSource(t, fleetAMD64), gatherImageOf(t, fleetARM64)}
			}},
		{name: "Docker and BuildKit index with attestation: OCI index", want: types.OCIImageIndex,
			sources: func(t *testing.T) []Source {
				return []Source{dockerSource(t, fleetAMD64), gatherFixture(t, fleetARM64)}
			}},
		{name: "annotations on a manifest list", wantErr: "Docker manifest list cannot carry index annotations",
			opts: Options{Annotations: map[string]string{"org.opencontainers.image.version": "1"}},
			sources: func(t *testing.T) []Source {
				return []Source{dockerSource(t, fleetAMD64), dockerSource(t, fleetARM64)}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := tt.sources(t)
			r, err := Merge(sources, tt.opts)
			if tt.wantErr != "" {
				wantInput(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Descriptor.MediaType != tt.want {
				t.Errorf("media type %s, want %s", r.Descriptor.MediaType, tt.want)
			}
			checkResult(t, r, sources)
		})
	}

	// A manifest list is a source like any index, and merges back to itself.
	list, err := Merge([]Source{dockerSource(t, fleetAMD64), dockerSource(t, fleetARM64)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, fleetAMD64, fleetARM64)
	for _, e := range list.Entries {
		dockerImage(t, s, map[string]string{"linux/amd64": fleetAMD64, "linux/arm64": fleetARM64}[e.Platform])
	}
	src, err := Gather(ctx, s, "registry.test/docker/fleet:list", s.put(list.Raw, list.Descriptor.MediaType))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Merge([]Source{src}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Raw, list.Raw) {
		t.Errorf("manifest list merged again:\n%s\nwant\n%s", again.Raw, list.Raw)
	}
}

func TestMergeErrors(t *testing.T) {
	ctx := context.Background()
	// An index holding fleet's amd64 image and the attestation of fleet's
	// arm64 image, which it does not hold.
	dangling := func(t *testing.T) Source {
		s := newStore(t, fleetAMD64, fleetARM64)
		var a, b v1.IndexManifest
		for fx, idx := range map[string]*v1.IndexManifest{fleetAMD64: &a, fleetARM64: &b} {
			raw, _ := s.read(hash(t, fixtures[fx].index))
			if err := json.Unmarshal(raw, idx); err != nil {
				t.Fatal(err)
			}
		}
		mixed := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{a.Manifests[0], b.Manifests[1]}}
		src, err := Gather(ctx, s, "registry.test/example/dangling:1", s.put(mustJSON(t, mixed), types.OCIImageIndex))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	fleetAtt := func(t *testing.T) Child {
		for _, c := range gatherFixture(t, fleetAMD64).Children {
			if c.Kind == KindAttestation {
				return c
			}
		}
		t.Fatal("no attestation in fixture")
		return Child{}
	}

	tests := []struct {
		name    string
		sources func(t *testing.T) []Source
		opts    Options
		wantErr []string
		want    []string
	}{
		{name: "no source", sources: func(*testing.T) []Source { return nil }, wantErr: []string{"no source"}},
		{name: "dangling attestation",
			sources: func(t *testing.T) []Source { return []Source{dangling(t)} },
			wantErr: []string{"registry.test/example/dangling:1", fixtures[fleetARM64].att, "refers to " + "sha256:" + fixtures[fleetARM64].image}},
		{name: "dangling attestation under a filter is dropped",
			sources: func(t *testing.T) []Source { return []Source{dangling(t)} },
			opts:    Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
			want:    []string{img(fleetAMD64)}},
		{name: "dangling attestation whose subject another source holds",
			sources: func(t *testing.T) []Source { return []Source{dangling(t), gatherImageOf(t, fleetARM64)} },
			want:    []string{img(fleetAMD64), img(fleetARM64), att(fleetARM64)}},
		{name: "source without a platform manifest",
			sources: func(t *testing.T) []Source {
				return []Source{gatherFixture(t, fleetAMD64), {Ref: "registry.test/only-att:1", Children: []Child{fleetAtt(t)}}}
			},
			wantErr: []string{"registry.test/only-att:1", "no platform image manifest"}},
		{name: "same digest as image and attestation",
			sources: func(t *testing.T) []Source {
				a := fleetAtt(t)
				p := v1.Platform{OS: "linux", Architecture: "riscv64"}
				d := a.Descriptor
				d.Annotations, d.Platform = nil, &p
				return []Source{gatherFixture(t, fleetAMD64), {Ref: "registry.test/odd:1", Children: []Child{{Descriptor: d, Kind: KindImage}}}}
			},
			wantErr: []string{"an attestation in source " + refOf(fleetAMD64), "an image in source registry.test/odd:1"}},
		{name: "empty annotation key",
			sources: func(t *testing.T) []Source { return []Source{gatherFixture(t, fleetAMD64)} },
			opts:    Options{Annotations: map[string]string{"": "x"}},
			wantErr: []string{"empty key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := tt.sources(t)
			r, err := Merge(sources, tt.opts)
			if tt.wantErr != nil {
				wantInput(t, err, tt.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(r); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			checkResult(t, r, sources)
		})
	}
}

// The CLI's json output: {"digest","platform","kind"} per manifest.
func TestEntryJSON(t *testing.T) {
	r, err := Merge([]Source{gatherFixture(t, fleetAMD64)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := string(mustJSON(t, r.Entries))
	want := `[{"digest":"sha256:` + fixtures[fleetAMD64].image + `","platform":"linux/amd64","kind":"image","source":"` + refOf(fleetAMD64) + `"},` +
		`{"digest":"sha256:` + fixtures[fleetAMD64].att + `","platform":"linux/amd64","kind":"attestation","subject":"sha256:` + fixtures[fleetAMD64].image + `","source":"` + refOf(fleetAMD64) + `"}]`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
