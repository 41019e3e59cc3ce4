package registry_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Manifests are answered as Distribution answers them, for each kind of
// manifest, by tag and by digest, whatever the client accepts: served as
// stored, refused, or (a manifest list by tag for a client that does not
// accept lists) rewritten, which is left to Distribution.
func TestManifestsAnswerAsDistribution(t *testing.T) {
	for _, tc := range storages {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.cfg(t))
			handler, app := s.Handlers()
			digests := pushManifestKinds(t, s.Addr())
			accepts := []string{
				"",
				string(types.OCIManifestSchema1),
				string(types.OCIImageIndex),
				string(types.DockerManifestSchema2),
				string(types.DockerManifestList),
				string(types.OCIImageIndex) + "; q=0.5, " + string(types.OCIManifestSchema1),
				strings.Join([]string{string(types.OCIManifestSchema1), string(types.OCIImageIndex),
					string(types.DockerManifestSchema2), string(types.DockerManifestList)}, ","),
			}
			for kind, d := range digests {
				for _, ref := range []string{kind, d} {
					for _, accept := range accepts {
						for _, method := range []string{"GET", "HEAD"} {
							h := http.Header{}
							if accept != "" {
								h.Set("Accept", accept)
							}
							what := method + " " + kind + " by " + map[bool]string{true: "digest", false: "tag"}[ref == d] + ", Accept " + accept
							path := "/v2/app/manifests/" + ref
							sameAnswer(t, what, ask(handler, method, path, h), ask(app, method, path, h))
						}
					}
				}
			}
			// What it is for: the reads a verification makes are answered
			// without Distribution's handlers; what needs them is not.
			all := http.Header{"Accept": {string(types.OCIManifestSchema1) + "," + string(types.OCIImageIndex)}}
			for _, c := range []struct {
				path   string
				header http.Header
				itself bool
			}{
				{"/v2/app/manifests/oci", all, true},
				{"/v2/app/manifests/" + digests["index"], all, true},
				{"/v2/app/manifests/docker", nil, true},
				{"/v2/app/manifests/oci", nil, false},                                                        // refused
				{"/v2/app/manifests/list", nil, false},                                                       // rewritten
				{"/v2/app/manifests/oci", http.Header{"If-None-Match": {`"` + digests["oci"] + `"`}}, false}, // 304
				{"/v2/app/manifests/nope", all, false},                                                       // 404
			} {
				r := httptest.NewRequest("GET", c.path, nil)
				r.Header = c.header
				if r.Header == nil {
					r.Header = http.Header{}
				}
				if got := s.AnswersItself(r); got != c.itself {
					t.Errorf("GET %s %v: answered without Distribution %v, want %v", c.path, c.header, got, c.itself)
				}
			}

			for _, c := range []struct {
				what, path string
				header     http.Header
			}{
				{"if-none-match, quoted", "/v2/app/manifests/oci", http.Header{"If-None-Match": {`"` + digests["oci"] + `"`}}},
				{"if-none-match, bare", "/v2/app/manifests/" + digests["oci"], http.Header{"If-None-Match": {digests["oci"]}}},
				{"unknown tag", "/v2/app/manifests/nope", all},
				{"unknown digest", "/v2/app/manifests/sha256:" + strings.Repeat("0", 64), all},
				{"another repository's manifest", "/v2/other/manifests/" + digests["oci"], all},
				{"unknown repository", "/v2/nothing/manifests/oci", all},
				{"malformed reference", "/v2/app/manifests/-bad", all},
				{"malformed digest", "/v2/app/manifests/sha256:xyz", all},
				{"tag list", "/v2/app/tags/list", nil},
			} {
				sameAnswer(t, c.what, ask(handler, "GET", c.path, c.header), ask(app, "GET", c.path, c.header))
			}
		})
	}
}

// pushManifestKinds pushes to host/app an OCI image manifest, an OCI index
// of it, a Docker manifest, and a Docker manifest list of it (linux/amd64,
// the platform Distribution rewrites a list to), tagged with their kind, and
// another image to host/other; it returns the digests by kind.
func pushManifestKinds(t *testing.T, host string) map[string]string {
	t.Helper()
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	docker, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	oci := mutate.ConfigMediaType(mutate.MediaType(docker, types.OCIManifestSchema1), types.OCIConfigJSON)
	amd64 := &v1.Platform{OS: "linux", Architecture: "amd64"}
	index := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: oci, Descriptor: v1.Descriptor{Platform: amd64}})
	list := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList),
		mutate.IndexAddendum{Add: docker, Descriptor: v1.Descriptor{Platform: amd64}})
	out := map[string]string{}
	for kind, img := range map[string]v1.Image{"docker": docker, "oci": oci} {
		if err := remote.Write(ref("app:"+kind), img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out[kind] = d.String()
	}
	for kind, idx := range map[string]v1.ImageIndex{"index": index, "list": list} {
		if err := remote.WriteIndex(ref("app:"+kind), idx); err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out[kind] = d.String()
	}
	other, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref("other:v1"), other); err != nil {
		t.Fatal(err)
	}
	return out
}
