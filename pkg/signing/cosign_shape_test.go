package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/internal/testenv"
)

// cosign v3.1.3 and seal sign the same image with the same key into bundle
// referrers; the two referrer manifests and bundles must have the same
// shape: same keys everywhere, same media types, artifact types, config,
// subject and annotation names, the same public key hint and the same
// signed statement.
func TestBundleReferrerMatchesCosign(t *testing.T) {
	ctx := context.Background()
	reg := testenv.GGCR(t)
	k := newKeyFiles(t)
	d := pushRandom(t, reg, "shape/app:v1")
	c := client(reg)

	out, err := cosign(t, k.dir, []string{"COSIGN_PASSWORD=" + testPassword}, "sign", "--key", k.key,
		"--use-signing-config=false", "--tlog-upload=false", "--yes", "--allow-insecure-registry", d.String())
	if err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	results, err := Sign(ctx, c, []string{d.String()}, Options{Signer: k.signer, Format: FormatBundle})
	recordErr("Sign", err)
	must(t, err)
	ours := results[0].Signature

	refs, err := c.Referrers(ctx, d)
	must(t, err)
	if len(refs) != 2 {
		t.Fatalf("%d referrers, want cosign's and seal's", len(refs))
	}
	var theirs, mine v1.Descriptor
	for _, r := range refs {
		if r.Digest.String() == ours {
			mine = r
		} else {
			theirs = r
		}
	}
	if mine.Digest.Hex == "" || theirs.Digest.Hex == "" {
		t.Fatalf("referrers %v do not include seal's %s and cosign's", refs, ours)
	}
	// As the referrers API lists them.
	if mine.ArtifactType != theirs.ArtifactType || mine.MediaType != theirs.MediaType {
		t.Errorf("listing: seal %s/%s, cosign %s/%s", mine.MediaType, mine.ArtifactType, theirs.MediaType, theirs.ArtifactType)
	}
	if !reflect.DeepEqual(keys(mine.Annotations), keys(theirs.Annotations)) {
		t.Errorf("listing annotations: seal %v, cosign %v", keys(mine.Annotations), keys(theirs.Annotations))
	}

	repo := d.Context().String()
	mm := fetchManifest(t, c, repo+"@"+mine.Digest.String()).Raw
	tm := fetchManifest(t, c, repo+"@"+theirs.Digest.String()).Raw
	record("seal referrer manifest", mm)
	if s, c := shape(t, mm), shape(t, tm); !reflect.DeepEqual(s, c) {
		t.Fatalf("manifest shape differs:\nseal   %v\ncosign %v", s, c)
	}
	for _, path := range [][]any{
		{"schemaVersion"}, {"mediaType"}, {"artifactType"}, {"config"}, {"subject"},
		{"layers", 0, "mediaType"},
		{"annotations", AnnotationBundleContent}, {"annotations", AnnotationPredicateType},
	} {
		if s, c := field(t, mm, path...), field(t, tm, path...); !reflect.DeepEqual(s, c) {
			t.Errorf("%v: seal %v, cosign %v", path, s, c)
		}
	}
	created, _ := field(t, mm, "annotations", AnnotationCreated).(string)
	if ts, err := time.Parse(time.RFC3339, created); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("created annotation %q", created)
	}

	// The bundles.
	var mref, tref struct {
		Layers []v1.Descriptor `json:"layers"`
	}
	must(t, json.Unmarshal(mm, &mref))
	must(t, json.Unmarshal(tm, &tref))
	mb := fetchBlob(t, c, d.Context(), mref.Layers[0])
	tb := fetchBlob(t, c, d.Context(), tref.Layers[0])
	record("seal bundle", mb)
	if s, c := shape(t, mb), shape(t, tb); !reflect.DeepEqual(s, c) {
		t.Fatalf("bundle shape differs:\nseal   %v\ncosign %v", s, c)
	}
	for _, path := range [][]any{
		{"mediaType"}, {"verificationMaterial"}, {"dsseEnvelope", "payloadType"},
	} {
		if s, c := field(t, mb, path...), field(t, tb, path...); !reflect.DeepEqual(s, c) {
			t.Errorf("bundle %v: seal %v, cosign %v", path, s, c)
		}
	}
	mp := decodeB64(t, field(t, mb, "dsseEnvelope", "payload"))
	tp := decodeB64(t, field(t, tb, "dsseEnvelope", "payload"))
	if s, c := shape(t, mp), shape(t, tp); !reflect.DeepEqual(s, c) {
		t.Errorf("statement shape: seal %v, cosign %v", s, c)
	}
	var ms, ts any
	must(t, json.Unmarshal(mp, &ms))
	must(t, json.Unmarshal(tp, &ts))
	if !reflect.DeepEqual(ms, ts) {
		t.Errorf("statements differ:\nseal   %s\ncosign %s", mp, tp)
	}

	// Our parser accepts both.
	for who, raw := range map[string][]byte{"seal": mm, "cosign": tm} {
		ref, err := ParseBundleReferrer(raw, hashOf(t, d))
		if err != nil {
			t.Fatalf("ParseBundleReferrer(%s): %v", who, err)
		}
		if ref.PredicateType != CosignSignPredicate || ref.Created.IsZero() {
			t.Errorf("ParseBundleReferrer(%s) = %+v", who, ref)
		}
		b, err := ParseBundle(fetchBlob(t, c, d.Context(), ref.Layer), ref.Layer)
		must(t, err)
		st, err := BundleStatement(b)
		must(t, err)
		if st.PredicateType != CosignSignPredicate || !hasSubject(st, hashOf(t, d)) {
			t.Errorf("BundleStatement(%s) = %+v", who, st)
		}
	}
}

// cosign's legacy `.sig` and seal's are the same bytes where they can be:
// the simple-signing payload and the config blob; seal appending to
// cosign's `.sig` keeps cosign's signature, dedupes a re-signature with the
// same key, and cosign verifies seal's.
func TestLegacyMatchesCosign(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Distribution(t)
	k := newKeyFiles(t)
	d := pushRandom(t, reg, "shape/legacy:v1")
	c := client(reg)
	ann := map[string]string{"team": "release"}

	out, err := cosign(t, k.dir, []string{"COSIGN_PASSWORD=" + testPassword}, "sign", "--key", k.key,
		"--use-signing-config=false", "--tlog-upload=false", "--new-bundle-format=false", "-a", "team=release",
		"--yes", "--allow-insecure-registry", d.String())
	if err != nil {
		t.Fatalf("cosign sign: %v\n%s", err, out)
	}
	h := hashOf(t, d)
	tag := d.Context().Tag(LegacyTag(h, LegacySignature)).String()
	cm := fetchManifest(t, c, tag)
	var cman v1.Manifest
	must(t, json.Unmarshal(cm.Raw, &cman))
	cconfig := fetchBlob(t, c, d.Context(), cman.Config)
	clayer := fetchBlob(t, c, d.Context(), cman.Layers[0])

	// Same payload bytes, same config bytes, same manifest but for the signature.
	payload, err := SimpleSigningPayload(d, ann)
	must(t, err)
	if !bytes.Equal(payload, clayer) {
		t.Fatalf("simple-signing payload:\nseal   %s\ncosign %s", payload, clayer)
	}
	layer, err := SignLegacy(ctx, k.signer, payload)
	must(t, err)
	fresh, added, err := AppendLegacy(nil, LegacySignature, []LegacyLayer{layer}, nil)
	must(t, err)
	if added != 1 {
		t.Fatalf("added %d", added)
	}
	if !bytes.Equal(fresh.Blobs[0].Data, cconfig) {
		t.Errorf("config:\nseal   %s\ncosign %s", fresh.Blobs[0].Data, cconfig)
	}
	if s, c := shape(t, fresh.Manifest), shape(t, cm.Raw); !reflect.DeepEqual(s, c) {
		t.Errorf("manifest shape:\nseal   %v\ncosign %v", s, c)
	}
	var fman v1.Manifest
	must(t, json.Unmarshal(fresh.Manifest, &fman))
	fman.Layers[0].Annotations[AnnotationSignature] = cman.Layers[0].Annotations[AnnotationSignature]
	if !reflect.DeepEqual(fman, cman) {
		t.Errorf("manifests differ beyond the signature:\nseal   %+v\ncosign %+v", fman, cman)
	}

	// Re-signing with the same key is a duplicate (cosign's rule): the tag
	// does not change.
	res, err := Sign(ctx, c, []string{d.String()}, Options{Signer: k.signer, Format: FormatLegacy, Annotations: ann})
	recordErr("Sign legacy", err)
	must(t, err)
	if res[0].Signature != tag {
		t.Errorf("result signature %q, want %q", res[0].Signature, tag)
	}
	if again := fetchManifest(t, c, tag); again.Descriptor.Digest != cm.Descriptor.Digest {
		t.Fatalf("same-key re-signature changed the .sig image")
	}

	// Another key appends, keeping cosign's layer first and untouched.
	k2 := quickKeyFiles(t)
	_, err = Sign(ctx, c, []string{d.String()}, Options{Signer: k2.signer, Format: FormatLegacy, Annotations: ann})
	must(t, err)
	both := fetchManifest(t, c, tag)
	var bman v1.Manifest
	must(t, json.Unmarshal(both.Raw, &bman))
	if len(bman.Layers) != 2 || !reflect.DeepEqual(bman.Layers[0], cman.Layers[0]) {
		t.Fatalf("after append: %+v", bman.Layers)
	}
	var cfg v1.ConfigFile
	must(t, json.Unmarshal(fetchBlob(t, c, d.Context(), bman.Config), &cfg))
	if len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0] != cman.Layers[0].Digest || len(cfg.History) != 2 {
		t.Fatalf("config after append: %+v", cfg)
	}

	// cosign verifies each key's signature in the shared tag.
	for _, pub := range []string{k.pub, k2.pub} {
		out, err := cosign(t, k.dir, nil, "verify", "--key", pub, "--insecure-ignore-tlog=true",
			"--new-bundle-format=false", "--allow-insecure-registry", d.String())
		if err != nil {
			t.Fatalf("cosign verify --key %s: %v\n%s", pub, err, out)
		}
		if !bytes.Contains([]byte(out), []byte(`"team":"release"`)) {
			t.Errorf("cosign verify output lacks the annotation:\n%s", out)
		}
	}
	// Our parser reads both layers, cosign's and ours.
	descs, err := ParseLegacyManifest(both.Raw, LegacySignature)
	must(t, err)
	for _, ld := range descs {
		p, err := ParseLegacyLayer(LegacySignature, ld, fetchBlob(t, c, d.Context(), ld), h)
		must(t, err)
		if p.SimpleSigning.Optional["team"] != "release" || len(p.Signature) == 0 {
			t.Errorf("parsed %+v", p)
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decodeB64(t testing.TB, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	must(t, err)
	return b
}
