package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

// The soak test's "inconsistent = 0" is only worth something if its checks
// see damage. Each case promotes a release without faults (go-containerregistry
// registries, which can delete), damages the destination the way a broken
// copy would, and expects the checks to report it; the intact case expects
// silence.
func TestChecksSeeDamage(t *testing.T) {
	ctx := context.Background()
	k, v := releaseKeyAndVerifier(t)
	src, dst := testenv.GGCR(t), testenv.GGCR(t)
	sides := [2]side{
		{reg: src, proxy: testenv.NewFaultProxy(t, "http://"+src.Host)},
		{reg: dst, proxy: testenv.NewFaultProxy(t, "http://"+dst.Host)},
	}
	c := oci.NewClient(oci.WithRetry(oci.Retry{Attempts: 1}))

	// Each damage gets the promoted release: the destination repository,
	// the index digest and the index as the destination holds it.
	type promoted struct {
		repo  name.Repository
		index v1.Hash
		ix    *v1.IndexManifest
	}
	del := func(t *testing.T, repo name.Repository, what string, h v1.Hash) {
		t.Helper()
		// remote.Delete deletes manifests; blobs go through the blob URL.
		if what == "manifest" {
			must(t, remote.Delete(repo.Digest(h.String()), remote.WithContext(ctx)))
			return
		}
		must(t, deleteBlob(ctx, repo, h))
	}
	platform := func(p promoted) v1.Hash {
		for _, d := range p.ix.Manifests {
			if !index.IsAttestation(d) {
				return d.Digest
			}
		}
		t.Fatal("no platform manifest")
		return v1.Hash{}
	}
	referrer := func(t *testing.T, p promoted, subject v1.Hash) v1.Descriptor {
		refs, err := c.Referrers(ctx, p.repo.Digest(subject.String()))
		must(t, err)
		if len(refs) == 0 {
			t.Fatalf("no referrer of %s", subject)
		}
		return refs[0]
	}
	for n, tc := range []struct {
		name   string
		damage func(t *testing.T, p promoted)
		want   string // in some problem; "" for none
	}{
		{"intact", func(*testing.T, promoted) {}, ""},
		{"platform manifest deleted", func(t *testing.T, p promoted) {
			del(t, p.repo, "manifest", platform(p))
		}, "tag v1 → "},
		{"layer deleted", func(t *testing.T, p promoted) {
			m, err := c.Manifest(ctx, p.repo.Digest(platform(p).String()))
			must(t, err)
			img, err := m.Image()
			must(t, err)
			del(t, p.repo, "blob", img.Layers[0].Digest)
		}, "missing"},
		{"signature bundle deleted", func(t *testing.T, p promoted) {
			r := referrer(t, p, p.index)
			m, err := c.Manifest(ctx, p.repo.Digest(r.Digest.String()))
			must(t, err)
			img, err := m.Image()
			must(t, err)
			del(t, p.repo, "blob", img.Layers[0].Digest)
		}, "referrer of"},
		{"signature lost", func(t *testing.T, p promoted) {
			del(t, p.repo, "manifest", referrer(t, p, p.index).Digest)
		}, "lost in the copy"},
		{"fallback tag lists a missing referrer", func(t *testing.T, p promoted) {
			// What a registry without the referrers API would show: the
			// fallback index lists a manifest that is gone.
			r := referrer(t, p, p.index)
			raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []v1.Descriptor{r}})
			must(t, err)
			must(t, c.Tag(ctx, p.repo.Tag(oci.FallbackTag(p.index)), raw, "application/vnd.oci.image.index.v1+json"))
			del(t, p.repo, "manifest", r.Digest)
		}, "tag " + "sha256-"},
		{"legacy tag of a missing manifest", func(t *testing.T, p promoted) {
			// A .sig tag for a manifest the destination does not have.
			ghost := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
			m, err := c.Manifest(ctx, p.repo.Digest(platform(p).String()))
			must(t, err)
			must(t, c.Tag(ctx, p.repo.Tag(signing.LegacyTag(ghost, signing.LegacySignature)), m.Raw, string(m.Descriptor.MediaType)))
		}, "its subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := &iteration{
				t: t, n: n, src: sides[0], dst: sides[1], faulty: c, clean: c, v: v,
				signer: k, format: signing.FormatBundle, repo: fmt.Sprintf("check/app%02d", n),
			}
			created, copied, err := it.flow(ctx, newSoakReport(1), it.push(ctx))
			must(t, err)
			if !copied {
				t.Fatal("not copied")
			}
			repo, err := name.NewRepository(dst.Host+"/"+it.repo, name.Insecure)
			must(t, err)
			m, err := c.Manifest(ctx, repo.Digest(created.Digest.String()))
			must(t, err)
			ix, err := m.Index()
			must(t, err)
			tc.damage(t, promoted{repo: repo, index: created.Digest, ix: ix})

			problems := it.checkDestination(ctx, &created.Digest, copied)
			all := strings.Join(problems, "\n")
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Fatalf("problems in an intact release:\n%s", all)
			case tc.want != "" && !strings.Contains(all, tc.want):
				t.Fatalf("damage not reported (want %q):\n%s", tc.want, all)
			}
		})
	}

	// A destination tag naming a release that does not pass, or another
	// digest than the source's, is reported even when the copy failed.
	t.Run("unsigned release tagged", func(t *testing.T) {
		it := &iteration{t: t, n: 99, src: sides[0], dst: sides[1], faulty: c, clean: c, v: v, repo: "check/unsigned"}
		target, err := name.NewTag(src.Host+"/"+it.repo+":v1", name.Insecure)
		must(t, err)
		created, err := index.Create(ctx, c, target, it.push(ctx), index.CreateOptions{})
		must(t, err)
		dstRepo, err := name.NewRepository(dst.Host+"/"+it.repo, name.Insecure)
		must(t, err)
		d, err := c.CopyTree(ctx, target.Context().Digest(created.Digest.String()), dstRepo)
		must(t, err)
		must(t, c.Tag(ctx, dstRepo.Tag("v1"), created.Raw, string(d.MediaType)))
		if all := strings.Join(it.checkDestination(ctx, &created.Digest, false), "\n"); !strings.Contains(all, "does not pass the policy") {
			t.Fatalf("unsigned release at the destination not reported:\n%s", all)
		}
		other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}
		if all := strings.Join(it.checkDestination(ctx, &other, false), "\n"); !strings.Contains(all, "not the release the source holds") {
			t.Fatalf("a tag naming another release not reported:\n%s", all)
		}
	})
}

// deleteBlob deletes a blob from a go-containerregistry test registry.
func deleteBlob(ctx context.Context, repo name.Repository, h v1.Hash) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete,
		fmt.Sprintf("http://%s/v2/%s/blobs/%s", repo.RegistryStr(), repo.RepositoryStr(), h), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("delete blob %s: %s", h, resp.Status)
	}
	return nil
}
