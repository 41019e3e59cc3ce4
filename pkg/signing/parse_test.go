package signing

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

var (
	testSubject = v1.Descriptor{
		MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1234,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)},
		// Not carried into the referrer's subject.
		Platform: &v1.Platform{OS: "linux", Architecture: "amd64"},
	}
	otherDigest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}
)

func signedReferrer(t *testing.T) *Artifact {
	t.Helper()
	st, err := SignStatement(testSubject.Digest, nil)
	must(t, err)
	b, err := SignDSSE(context.Background(), quickSigner(t), st)
	must(t, err)
	art, err := BundleReferrer(testSubject, b, CosignSignPredicate, time.Unix(1700000000, 0))
	must(t, err)
	return art
}

func TestBundleReferrerChecksItsInput(t *testing.T) {
	s := quickSigner(t)
	st, err := SignStatement(testSubject.Digest, map[string]string{"k": "v"})
	must(t, err)
	b, err := SignDSSE(context.Background(), s, st)
	must(t, err)
	if _, err := BundleReferrer(testSubject, b, "https://slsa.dev/provenance/v1", time.Now()); err == nil {
		t.Error("predicate type mismatch accepted")
	}
	other := testSubject
	other.Digest = otherDigest
	if _, err := BundleReferrer(other, b, CosignSignPredicate, time.Now()); err == nil {
		t.Error("subject digest mismatch accepted")
	}
	if _, err := BundleReferrer(testSubject, []byte(`{"mediaType":"`+BundleMediaType+`"}`), CosignSignPredicate, time.Now()); err == nil {
		t.Error("bundle without DSSE content accepted")
	}
	art := signedReferrer(t)
	var m v1.Manifest
	must(t, json.Unmarshal(art.Manifest, &m))
	if m.Subject.Platform != nil || m.Subject.Digest != testSubject.Digest || m.Subject.Size != testSubject.Size {
		t.Errorf("subject %+v", m.Subject)
	}
	if m.Annotations[AnnotationCreated] != "2023-11-14T22:13:20Z" {
		t.Errorf("created %q", m.Annotations[AnnotationCreated])
	}
	if string(art.Blobs[0].Data) != "{}" || art.Blobs[0].Descriptor.Digest.Hex != "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
		t.Errorf("config blob %s %s", art.Blobs[0].Data, art.Blobs[0].Descriptor.Digest)
	}
}

func TestParseBundleReferrerStrict(t *testing.T) {
	art := signedReferrer(t)
	good := art.Manifest
	if _, err := ParseBundleReferrer(good, testSubject.Digest); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		must(t, json.Unmarshal(good, &m))
		f(m)
		b, err := json.Marshal(m)
		must(t, err)
		return b
	}
	layers := func(m map[string]any) []any { return m["layers"].([]any) }
	cases := []struct {
		name    string
		raw     []byte
		subject v1.Hash
		want    string
	}{
		{"other subject", good, otherDigest, "subject"},
		{"not json", []byte("{"), testSubject.Digest, "manifest"},
		{"too big", make([]byte, MaxManifestSize+1), testSubject.Digest, "larger"},
		{"schema 1", edit(func(m map[string]any) { m["schemaVersion"] = 1 }), testSubject.Digest, "schemaVersion"},
		{"index", edit(func(m map[string]any) { m["mediaType"] = "application/vnd.oci.image.index.v1+json" }), testSubject.Digest, "media type"},
		{"artifact type", edit(func(m map[string]any) {
			m["artifactType"] = "application/vnd.example"
		}), testSubject.Digest, "artifact type"},
		{"no subject", edit(func(m map[string]any) { delete(m, "subject") }), testSubject.Digest, "subject"},
		{"two layers", edit(func(m map[string]any) { m["layers"] = append(layers(m), layers(m)[0]) }), testSubject.Digest, "2 layers"},
		{"layer type", edit(func(m map[string]any) {
			layers(m)[0].(map[string]any)["mediaType"] = "application/json"
		}), testSubject.Digest, "layer media type"},
		{"huge layer", edit(func(m map[string]any) {
			layers(m)[0].(map[string]any)["size"] = MaxBundleSize + 1
		}), testSubject.Digest, "size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBundleReferrer(tc.raw, tc.subject)
			if err == nil || !strings.Contains(err.Error(), tc.want) || fault.KindOf(err) != fault.Verification {
				t.Fatalf("err %v (kind %v), want a verification error with %q", err, fault.KindOf(err), tc.want)
			}
		})
	}
	// ParseBundle checks the blob against its descriptor.
	layer := art.Blobs[1]
	if _, err := ParseBundle(layer.Data, layer.Descriptor); err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte{}, layer.Data...)
	tampered[len(tampered)-2] ^= 1
	if _, err := ParseBundle(tampered, layer.Descriptor); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Errorf("tampered bundle: %v", err)
	}
	if _, err := ParseBundle(layer.Data[:10], layer.Descriptor); err == nil {
		t.Error("truncated bundle accepted")
	}
}

func TestParseLegacyStrict(t *testing.T) {
	ctx := context.Background()
	s := quickSigner(t)
	img, err := name.NewDigest("registry.example/app@" + testSubject.Digest.String())
	must(t, err)
	payload, err := SimpleSigningPayload(img, nil)
	must(t, err)
	if !strings.Contains(string(payload), `"optional":null`) {
		t.Errorf("payload without annotations: %s", payload)
	}
	sig, err := SignLegacy(ctx, s, payload)
	must(t, err)
	art, _, err := AppendLegacy(nil, LegacySignature, []LegacyLayer{sig}, nil)
	must(t, err)
	descs, err := ParseLegacyManifest(art.Manifest, LegacySignature)
	must(t, err)
	if _, err := ParseLegacyLayer(LegacySignature, descs[0], sig.Payload, testSubject.Digest); err != nil {
		t.Fatal(err)
	}
	// The .sig of one image copied to another's tag does not count.
	if _, err := ParseLegacyLayer(LegacySignature, descs[0], sig.Payload, otherDigest); err == nil || !strings.Contains(err.Error(), "signs") {
		t.Errorf("signature for another digest: %v", err)
	}
	if _, err := ParseLegacyLayer(LegacySignature, descs[0], append([]byte(" "), sig.Payload[1:]...), testSubject.Digest); err == nil {
		t.Error("payload not matching its digest accepted")
	}
	noSig := descs[0]
	noSig.Annotations = map[string]string{}
	if _, err := ParseLegacyLayer(LegacySignature, noSig, sig.Payload, testSubject.Digest); err == nil {
		t.Error("layer without signature accepted")
	}
	if _, err := ParseLegacyManifest(art.Manifest, LegacyAttestation); err == nil {
		t.Error(".sig manifest accepted as .att")
	}

	// .att: the envelope's statement must be about the subject, and the
	// predicate annotation must match the statement.
	st, err := SignStatement(testSubject.Digest, nil)
	must(t, err)
	att, err := AttestLegacy(ctx, s, st)
	must(t, err)
	if att.Annotations[AnnotationAttPredicateType] != CosignSignPredicate || att.Annotations[AnnotationSignature] != "" {
		t.Errorf("att annotations %v", att.Annotations)
	}
	aart, _, err := AppendLegacy(nil, LegacyAttestation, []LegacyLayer{att}, nil)
	must(t, err)
	adescs, err := ParseLegacyManifest(aart.Manifest, LegacyAttestation)
	must(t, err)
	if _, err := ParseLegacyLayer(LegacyAttestation, adescs[0], att.Payload, testSubject.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseLegacyLayer(LegacyAttestation, adescs[0], att.Payload, otherDigest); err == nil {
		t.Error("attestation about another digest accepted")
	}
	lying := adescs[0]
	lying.Annotations = map[string]string{AnnotationAttPredicateType: "https://slsa.dev/provenance/v1"}
	if _, err := ParseLegacyLayer(LegacyAttestation, lying, att.Payload, testSubject.Digest); err == nil {
		t.Error("predicate annotation contradicting the statement accepted")
	}
}

func TestAppendLegacyDedupe(t *testing.T) {
	ctx := context.Background()
	s1, s2 := quickSigner(t), quickSigner(t)
	img, _ := name.NewDigest("registry.example/app@" + testSubject.Digest.String())
	payload, _ := SimpleSigningPayload(img, map[string]string{"a": "b"})
	l1, err := SignLegacy(ctx, s1, payload)
	must(t, err)
	l1again, err := SignLegacy(ctx, s1, payload) // ECDSA: another signature, same key
	must(t, err)
	l2, err := SignLegacy(ctx, s2, payload)
	must(t, err)
	base, _, err := AppendLegacy(nil, LegacySignature, []LegacyLayer{l1}, s1.PublicKey())
	must(t, err)
	for _, tc := range []struct {
		name  string
		add   LegacyLayer
		pub   any
		added int
	}{
		{"identical layer", l1, nil, 0},
		{"same key re-signature", l1again, s1.PublicKey(), 0},
		{"same key re-signature, key unknown", l1again, nil, 1},
		{"another key", l2, s2.PublicKey(), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			art, n, err := AppendLegacy(base.Manifest, LegacySignature, []LegacyLayer{tc.add}, tc.pub)
			must(t, err)
			if n != tc.added {
				t.Fatalf("added %d, want %d", n, tc.added)
			}
			descs, err := ParseLegacyManifest(art.Manifest, LegacySignature)
			must(t, err)
			if len(descs) != 1+tc.added {
				t.Fatalf("%d layers", len(descs))
			}
		})
	}
	if _, _, err := AppendLegacy(base.Manifest, LegacySignature, []LegacyLayer{{MediaType: DSSEMediaType, Payload: []byte("{}")}}, nil); err == nil {
		t.Error("a DSSE layer appended to a .sig image")
	}
}

// The scanner that guards the signing tests' output does catch a leak,
// including one line of a PEM key.
func TestSecretScanCatchesLeaks(t *testing.T) {
	priv, _, err := GenerateKeyPair([]byte("x"))
	must(t, err)
	lines := strings.Split(string(priv), "\n")
	caps := []capture{{"clean", []byte("nothing to see")}, {"dump", []byte("error: " + lines[2])}}
	sec := map[string]string{}
	addSecret(sec, "key", string(priv))
	if got := findLeaks(caps, sec); len(got) != 1 || !strings.Contains(got[0], "dump") {
		t.Fatalf("findLeaks = %v", got)
	}
}
