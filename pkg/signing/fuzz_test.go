package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/pkg/fault"
)

// The fuzz targets' seeds are made by this package's own writers with a
// fresh key: what seal (and cosign, which it matches) really pushes.

var fuzzSubject = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("5e", 32)}

type fuzzMaterial struct {
	bundleJSON  []byte // a DSSE bundle over cosign's sign statement
	referrer    []byte // the bundle's referrer manifest
	sigLayer    LegacyLayer
	attLayer    LegacyLayer
	sigManifest []byte
	attManifest []byte
	certPEM     string // a certificate annotation, as keyless signing writes
}

func fuzzSeedMaterial(f *testing.F) fuzzMaterial {
	f.Helper()
	ctx := context.Background()
	check := func(err error) {
		f.Helper()
		if err != nil {
			f.Fatal(err)
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	s, err := NewKeySigner(k, Services{})
	check(err)
	var m fuzzMaterial

	st, err := SignStatement(fuzzSubject, map[string]string{"release": "v1"})
	check(err)
	m.bundleJSON, err = SignDSSE(ctx, s, st)
	check(err)
	art, err := BundleReferrer(v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 512, Digest: fuzzSubject},
		m.bundleJSON, CosignSignPredicate, time.Unix(1700000000, 0))
	check(err)
	m.referrer = art.Manifest

	img, err := name.NewDigest("registry.test/fuzz/app@" + fuzzSubject.String())
	check(err)
	payload, err := SimpleSigningPayload(img, map[string]string{"k": "v"})
	check(err)
	m.sigLayer, err = SignLegacy(ctx, s, payload)
	check(err)
	m.attLayer, err = AttestLegacy(ctx, s, st)
	check(err)
	sigArt, _, err := AppendLegacy(nil, LegacySignature, []LegacyLayer{m.sigLayer}, s.PublicKey())
	check(err)
	m.sigManifest = sigArt.Manifest
	attArt, _, err := AppendLegacy(nil, LegacyAttestation, []LegacyLayer{m.attLayer}, s.PublicKey())
	check(err)
	m.attManifest = attArt.Manifest

	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1800000000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	check(err)
	m.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return m
}

func wantVerification(t *testing.T, what string, err error) {
	t.Helper()
	if k := fault.KindOf(err); k != fault.Verification {
		t.Fatalf("%s: error of kind %v, want verification: %v", what, k, err)
	}
}

func descriptorOf(data []byte, mt types.MediaType) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(data))
	return v1.Descriptor{MediaType: mt, Digest: h, Size: n}
}

// FuzzParseBundleReferrer: errors are verification failures; an accepted
// referrer is about the subject asked for and names one bundle layer within
// the size cap.
func FuzzParseBundleReferrer(f *testing.F) {
	m := fuzzSeedMaterial(f)
	f.Add(m.referrer, fuzzSubject.Hex)
	f.Add(m.referrer, strings.Repeat("00", 32))
	f.Add(m.sigManifest, fuzzSubject.Hex)
	f.Fuzz(func(t *testing.T, raw []byte, subjectHex string) {
		subject, err := v1.NewHash("sha256:" + subjectHex)
		if err != nil {
			return
		}
		ref, err := ParseBundleReferrer(raw, subject)
		if err != nil {
			wantVerification(t, "ParseBundleReferrer", err)
			return
		}
		if ref.Subject.Digest != subject {
			t.Fatalf("accepted a referrer of %s as one of %s", ref.Subject.Digest, subject)
		}
		if ref.Layer.Size <= 0 || ref.Layer.Size > MaxBundleSize || !isBundleMediaType(string(ref.Layer.MediaType)) {
			t.Fatalf("accepted bundle layer %+v", ref.Layer)
		}
	})
}

// FuzzParseBundle parses a fuzzed bundle (and its DSSE envelope) as the blob
// a referrer names. Errors are verification failures; the same bytes under
// another digest are refused; an accepted bundle re-marshals to a bundle
// that parses again, and a statement read from it names a subject.
func FuzzParseBundle(f *testing.F) {
	m := fuzzSeedMaterial(f)
	f.Add(m.bundleJSON)
	f.Add(m.attLayer.Payload) // a bare DSSE envelope, not a bundle
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := descriptorOf(data, BundleMediaType)
		b, err := ParseBundle(data, d)
		if err != nil {
			wantVerification(t, "ParseBundle", err)
			return
		}
		lie := d
		lie.Digest.Hex = strings.Repeat("0", 64)
		if _, err := ParseBundle(data, lie); err == nil {
			t.Fatal("bundle accepted under a digest it does not have")
		}
		again, err := b.MarshalJSON()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		b2, err := ParseBundle(again, descriptorOf(again, BundleMediaType))
		if err != nil {
			t.Fatalf("the re-marshalled bundle does not parse: %v", err)
		}
		st, err := BundleStatement(b)
		if err != nil {
			wantVerification(t, "BundleStatement", err)
			if _, err2 := BundleStatement(b2); err2 == nil {
				t.Fatal("re-marshalled bundle has a statement the original had not")
			}
			return
		}
		if len(st.Subject) == 0 || st.PredicateType == "" {
			t.Fatalf("statement %+v", st)
		}
		st2, err := BundleStatement(b2)
		if err != nil || st2.PredicateType != st.PredicateType || len(st2.Subject) != len(st.Subject) {
			t.Fatalf("re-marshalled bundle's statement differs: %v", err)
		}
	})
}

// FuzzParseLegacyManifest: errors are verification failures; an accepted
// `.sig`/`.att` image has at most cosign's 1000 layers, each of the kind's
// media type and within the payload cap.
func FuzzParseLegacyManifest(f *testing.F) {
	m := fuzzSeedMaterial(f)
	f.Add(m.sigManifest, false)
	f.Add(m.attManifest, true)
	f.Add(m.referrer, false)
	f.Fuzz(func(t *testing.T, raw []byte, att bool) {
		kind := LegacySignature
		if att {
			kind = LegacyAttestation
		}
		layers, err := ParseLegacyManifest(raw, kind)
		if err != nil {
			wantVerification(t, "ParseLegacyManifest", err)
			return
		}
		if len(layers) > maxLegacyLayers {
			t.Fatalf("%d layers accepted", len(layers))
		}
		for _, l := range layers {
			if l.MediaType != kind.layerMediaType() || l.Size <= 0 || l.Size > MaxLegacyPayloadSize {
				t.Fatalf("accepted layer %+v", l)
			}
		}
	})
}

// FuzzParseLegacyLayer parses a fuzzed legacy payload with fuzzed signature,
// certificate and timestamp annotations. Errors are verification failures;
// an accepted `.sig` payload signs the subject asked for and carries a
// signature; an accepted `.att` envelope holds a statement about the subject
// with the predicate type its annotation claims.
func FuzzParseLegacyLayer(f *testing.F) {
	m := fuzzSeedMaterial(f)
	sig, att := m.sigLayer, m.attLayer
	f.Add(sig.Payload, sig.Annotations[AnnotationSignature], "", "", "", false, fuzzSubject.Hex)
	f.Add(sig.Payload, sig.Annotations[AnnotationSignature], m.certPEM, "", `{"SignedRFC3161Timestamp":"`+base64.StdEncoding.EncodeToString([]byte("ts"))+`"}`, false, fuzzSubject.Hex)
	f.Add(att.Payload, "", m.certPEM, att.Annotations[AnnotationAttPredicateType], "", true, fuzzSubject.Hex)
	f.Add(att.Payload, "", "", "https://slsa.dev/provenance/v1", "", true, strings.Repeat("11", 32))
	f.Fuzz(func(t *testing.T, payload []byte, sigB64, cert, predicateType, timestamp string, isAtt bool, subjectHex string) {
		subject, err := v1.NewHash("sha256:" + subjectHex)
		if err != nil {
			return
		}
		kind := LegacySignature
		if isAtt {
			kind = LegacyAttestation
		}
		d := descriptorOf(payload, kind.layerMediaType())
		d.Annotations = map[string]string{}
		for k, v := range map[string]string{AnnotationSignature: sigB64, AnnotationCertificate: cert, AnnotationAttPredicateType: predicateType, AnnotationTimestamp: timestamp} {
			if v != "" {
				d.Annotations[k] = v
			}
		}
		p, err := ParseLegacyLayer(kind, d, payload, subject)
		if err != nil {
			wantVerification(t, "ParseLegacyLayer", err)
			return
		}
		if !bytes.Equal(p.Payload, payload) {
			t.Fatal("payload changed")
		}
		if cert != "" && p.Certificate == nil {
			t.Fatal("certificate annotation accepted but not decoded")
		}
		switch kind {
		case LegacySignature:
			if len(p.Signature) == 0 || p.SimpleSigning == nil || p.SimpleSigning.Critical.Image.DockerManifestDigest != subject.String() {
				t.Fatalf("accepted .sig layer %+v for %s", p.SimpleSigning, subject)
			}
		case LegacyAttestation:
			if p.PredicateType != predicateType {
				t.Fatalf("predicate type %q, annotation %q", p.PredicateType, predicateType)
			}
		}
		if _, err := ParseLegacyLayer(kind, d, append(bytes.Clone(payload), ' '), subject); err == nil {
			t.Fatal("a payload other than the descriptor's was accepted")
		}
	})
}
