package promote_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/promote"
	"github.com/seal-dev/seal/pkg/signing"
)

// A batch file promotes several images over one client, concurrently; a
// pair that fails (its source does not exist) does not stop the others and
// its result says why; the error is an input error.
func TestCopyAll(t *testing.T) {
	ctx := context.Background()
	src, dstReg := testenv.Distribution(t), testenv.GGCR(t)
	c := client()
	k := newKey(t)
	fleet := pushRelease(t, c, src, "fleet", "staging/fleet", k)
	agent := pushRelease(t, c, src, "fleet-agent", "staging/fleet-agent", k)
	batch := "# promotion of release v1\n\n" +
		fleet.tag.String() + "  " + dstReg.Ref("prime/fleet:v1") + "\n" +
		src.Ref("staging/missing:v1") + " " + dstReg.Ref("prime/missing:v1") + "\n" +
		agent.index.String() + "\t" + dstReg.Ref("prime/fleet-agent:v1") + "\n"
	pairs, err := promote.ReadPairs(strings.NewReader(batch))
	must(t, err)
	if len(pairs) != 3 {
		t.Fatalf("pairs %+v", pairs)
	}
	results, err := promote.CopyAll(ctx, c, pairs, promote.Options{Concurrency: 2, Gate: keyGate(t, c, k)})
	if err == nil || fault.KindOf(err) != fault.Input {
		t.Fatalf("error %v (kind %v), want an input error for the missing source", err, fault.KindOf(err))
	}
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	for i, want := range []string{fleet.index.DigestStr(), "", agent.index.DigestStr()} {
		r := results[i]
		if r.Source != pairs[i].Source {
			t.Errorf("result %d is for %s, want %s", i, r.Source, pairs[i].Source)
		}
		if want == "" {
			if r.Error == "" || !strings.Contains(r.Error, "not found") {
				t.Errorf("result %d: error %q", i, r.Error)
			}
			continue
		}
		if r.Error != "" || r.Digest != want || !r.Tagged || r.Verification == nil || !r.Verification.Destination.Passed {
			t.Errorf("result %d: %+v", i, r)
		}
		got, err := c.Resolve(ctx, parseTag(t, c, pairs[i].Destination))
		if err != nil || got.Digest.String() != want {
			t.Errorf("%s: %v (%v)", pairs[i].Destination, got.Digest, err)
		}
	}
	if _, err := c.Resolve(ctx, parseTag(t, c, dstReg.Ref("prime/missing:v1"))); !oci.IsNotFound(err) {
		t.Errorf("the failed pair's tag exists (err %v)", err)
	}
}

// A batch with a bad line or two pairs writing one tag is refused before
// anything is copied.
func TestCopyAllRefusesBadBatch(t *testing.T) {
	src, dstReg := testenv.Distribution(t), testenv.Distribution(t)
	proxy := testenv.NewFaultProxy(t, "http://"+dstReg.Host)
	c := client()
	d := pushRelease(t, c, src, "fleet", "staging/fleet", newKey(t))
	for _, tc := range []struct {
		name  string
		pairs []promote.Pair
		want  string
	}{
		{"bad reference", []promote.Pair{{d.tag.String(), proxy.Host() + "/prime/fleet:v1"}, {"UPPER/case:v1", proxy.Host() + "/x:v1"}}, "pair 2"},
		{"same destination twice", []promote.Pair{{d.tag.String(), proxy.Host() + "/prime/fleet:v1"}, {d.index.String(), proxy.Host() + "/prime/fleet:v1"}}, "both write"},
		{"destination digest", []promote.Pair{{d.tag.String(), proxy.Host() + "/prime/fleet@" + d.index.DigestStr()}}, "name a tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := promote.CopyAll(context.Background(), c, tc.pairs, promote.Options{})
			if err == nil || fault.KindOf(err) != fault.Input || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (kind %v), want an input error with %q", err, fault.KindOf(err), tc.want)
			}
			if n := len(proxy.Log()); n != 0 {
				t.Fatalf("destination saw %d requests", n)
			}
		})
	}
}

func TestReadPairs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  string
	}{
		{"a:1 b:1\n# comment\n\n  c:1   d:1  \n", 2, ""},
		{"", 0, ""},
		{"a:1\n", 0, "line 1"},
		{"a:1 b:1\na b c\n", 0, "line 2"},
	} {
		got, err := promote.ReadPairs(strings.NewReader(tc.in))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || fault.KindOf(err) != fault.Input):
			t.Errorf("%q: error %v, want an input error naming %s", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || len(got) != tc.want):
			t.Errorf("%q: %d pairs, %v", tc.in, len(got), err)
		}
	}
}

func TestParsePair(t *testing.T) {
	c := client()
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		src, dst, want, err string
	}{
		{"127.0.0.1:5000/app:v1", "127.0.0.1:6000/prime/app:v2", "127.0.0.1:6000/prime/app:v2", ""},
		{"127.0.0.1:5000/app:v1", "127.0.0.1:6000/prime/app", "127.0.0.1:6000/prime/app:v1", ""},
		{"127.0.0.1:5000/app:v1.2@" + dg, "127.0.0.1:6000/prime/app", "127.0.0.1:6000/prime/app:v1.2", ""},
		{"127.0.0.1:5000/app@" + dg, "127.0.0.1:6000/prime/app", "", "names none"},
		{"127.0.0.1:5000/app@" + dg, "127.0.0.1:6000/prime/app:latest", "127.0.0.1:6000/prime/app:latest", ""},
		{"127.0.0.1:5000/app:v1", "127.0.0.1:6000/prime/app@" + dg, "", "name a tag"},
		{"127.0.0.1:5000/App:v1", "127.0.0.1:6000/prime/app:v1", "", "parse reference"},
	} {
		_, dst, err := promote.ParsePair(c, tc.src, tc.dst)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || fault.KindOf(err) != fault.Input {
				t.Errorf("%s %s: error %v, want an input error with %q", tc.src, tc.dst, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s %s: %v", tc.src, tc.dst, err)
		case dst.Name() != tc.want:
			t.Errorf("%s %s: destination %s, want %s", tc.src, tc.dst, dst.Name(), tc.want)
		}
	}
}

// Within one registry blobs are mounted, never uploaded.
func TestCopyMountsWithinRegistry(t *testing.T) {
	reg := testenv.Distribution(t)
	proxy := testenv.NewFaultProxy(t, "http://"+reg.Host)
	c := client()
	rel := pushRelease(t, c, reg, "fleet", "staging/fleet", newKey(t))
	proxy.ResetCounts()
	s, d, err := promote.ParsePair(c, proxy.Host()+"/"+rel.tag.RepositoryStr()+":v1", proxy.Host()+"/prime/fleet:v1")
	must(t, err)
	res, err := promote.Copy(context.Background(), c, s, d, promote.Options{})
	must(t, err)
	if res.Blobs.Copied == 0 || proxy.Count("POST", "mount") != int(res.Blobs.Copied) {
		t.Errorf("%d blobs copied, %d mounts", res.Blobs.Copied, proxy.Count("POST", "mount"))
	}
	if n := proxy.Count("PUT", "upload") + proxy.Count("PATCH", "upload") + proxy.Count("GET", "blob"); n != 0 {
		t.Errorf("blobs went through the client: %v", proxy.Counts())
	}
}

// A destination whose legacy .sig tag already holds other signatures (the
// prime registry's own) keeps them: the source's are merged in, as `cosign
// sign` appends, and cosign verifies each signer's at the destination.
func TestCopyMergesLegacyTags(t *testing.T) {
	ctx := context.Background()
	src, dstReg := testenv.GGCR(t), testenv.Distribution(t)
	c := client()
	k, later, prime := newKey(t), newKey(t), newKey(t)
	rel := pushRelease(t, c, src, "fleet", "staging/fleet", k)
	s, d, err := promote.ParsePair(c, rel.tag.String(), dstReg.Ref("prime/fleet:v1"))
	must(t, err)
	_, err = promote.Copy(ctx, c, s, d, promote.Options{})
	must(t, err)
	dd := d.Context().Digest(rel.index.DigestStr())
	// The prime registry signs what it received; staging gets a second
	// signature after the first promotion.
	_, err = signing.Sign(ctx, c, []string{dd.String()}, signing.Options{Signer: prime.signer, Format: signing.FormatLegacy})
	must(t, err)
	_, err = signing.Sign(ctx, c, []string{rel.index.String()}, signing.Options{Signer: later.signer, Format: signing.FormatLegacy})
	must(t, err)

	res, err := promote.Copy(ctx, c, s, d, promote.Options{})
	must(t, err)
	if res.LegacyTags.Merged != 1 || res.LegacyTags.Copied != 0 {
		t.Errorf("legacy tags %+v, want the index's .sig merged", res.LegacyTags)
	}
	for name, signer := range map[string]key{"release": k, "later": later, "prime": prime} {
		out, err := cosign(t, "verify", "--key", signer.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry",
			"--new-bundle-format=false", dd.String())
		if err != nil {
			t.Errorf("cosign verify of the %s signature at the destination: %v\n%s", name, err, out)
		}
	}
	again, err := promote.Copy(ctx, c, s, d, promote.Options{})
	must(t, err)
	if again.LegacyTags.Merged != 0 || again.LegacyTags.Skipped != 4 {
		t.Errorf("third run legacy tags %+v, want all skipped", again.LegacyTags)
	}
}

// A source whose referrers listing lies — an entry whose manifest refers to
// another subject, an entry naming a manifest that does not exist — gets
// those entries left out with a warning each; everything else is copied.
func TestCopyLeavesOutMisfiledReferrers(t *testing.T) {
	ctx := context.Background()
	src, dstReg := testenv.Distribution(t), testenv.GGCR(t)
	c := client()
	rel := pushRelease(t, c, src, "fleet", "staging/fleet", newKey(t))
	indexRefs, err := c.Referrers(ctx, rel.index)
	must(t, err)
	p1 := rel.index.Context().Digest(rel.platforms[0].String())
	p1Refs, err := c.Referrers(ctx, p1)
	must(t, err)
	// The index's signature listed as a referrer of the platform.
	h, _ := v1.NewHash(p1.DigestStr())
	fallback := p1.Context().Tag(oci.FallbackTag(h))
	fm, err := c.Manifest(ctx, fallback)
	must(t, err)
	listing, err := fm.Index()
	must(t, err)
	listing.Manifests = append(listing.Manifests, indexRefs[0])
	raw, err := json.Marshal(listing)
	must(t, err)
	must(t, c.Tag(ctx, fallback, raw, string(types.OCIImageIndex)))

	// A referrer of the platform deleted after it was listed: a copy of
	// one of its signatures with another annotation, pushed, then removed.
	m, err := c.Manifest(ctx, p1.Context().Digest(p1Refs[0].Digest.String()))
	must(t, err)
	var doc map[string]any
	must(t, json.Unmarshal(m.Raw, &doc))
	doc["annotations"].(map[string]any)["test"] = "deleted later"
	raw, err = json.Marshal(doc)
	must(t, err)
	bogus, err := c.PushReferrer(ctx, p1, raw, string(m.Descriptor.MediaType))
	must(t, err)
	req, err := http.NewRequest(http.MethodDelete, "http://"+src.Host+"/v2/"+p1.RepositoryStr()+"/manifests/"+bogus.Digest.String(), nil)
	must(t, err)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete %s: %s", bogus.Digest, resp.Status)
	}
	s, d, err := promote.ParsePair(c, rel.tag.String(), dstReg.Ref("prime/fleet:v1"))
	must(t, err)
	res, err := promote.Copy(ctx, c, s, d, promote.Options{})
	must(t, err)
	if len(res.Warnings) != 2 || !strings.Contains(strings.Join(res.Warnings, "\n"), "another subject") ||
		!strings.Contains(strings.Join(res.Warnings, "\n"), "does not exist") {
		t.Fatalf("warnings %q", res.Warnings)
	}
	got, err := c.Referrers(ctx, d.Context().Digest(p1.DigestStr()))
	must(t, err)
	for _, r := range got {
		if r.Digest == indexRefs[0].Digest || r.Digest == bogus.Digest {
			t.Errorf("misfiled referrer %s copied as a referrer of %s", r.Digest, p1.DigestStr())
		}
	}
	// (The API also lists the BuildKit attestation manifest, whose subject
	// is the platform.)
	for _, want := range p1Refs {
		if !slices.ContainsFunc(got, func(d v1.Descriptor) bool { return d.Digest == want.Digest }) {
			t.Errorf("referrer %s of the platform not at the destination", want.Digest)
		}
	}
}
