package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/signing"
)

// testLog is a transparency log's signing key: testenv has no Rekor server,
// so the log entry of these tests is made here, the way Rekor v1 makes one
// (a hashedrekord body and a signed entry timestamp over it).
type testLog struct {
	key *ecdsa.PrivateKey
	id  []byte
}

func newTestLog(t *testing.T) testLog {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	must(t, err)
	id := sha256.Sum256(der)
	return testLog{key: k, id: id[:]}
}

func (l testLog) trusted(t *testing.T) root.TrustedMaterial {
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, map[string]*root.TransparencyLog{
		hex.EncodeToString(l.id): {
			BaseURL: "https://rekor.test", ID: l.id, HashFunc: crypto.SHA256, PublicKey: &l.key.PublicKey,
			SignatureHashFunc: crypto.SHA256, ValidityPeriodStart: time.Now().Add(-time.Hour),
		},
	})
	must(t, err)
	return tr
}

// entry is cosign's Rekor bundle annotation for a hashedrekord of a
// signature over payload by the certificate in PEM.
func (l testLog) entry(t *testing.T, payload, sig []byte, certPEM string, integrated time.Time) rekorAnnotation {
	sum := sha256.Sum256(payload)
	body, err := json.Marshal(map[string]any{
		"apiVersion": "0.0.1", "kind": "hashedrekord",
		"spec": map[string]any{
			"data":      map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{"content": sig, "publicKey": map[string]any{"content": []byte(certPEM)}},
		},
	})
	must(t, err)
	var a rekorAnnotation
	a.Payload.Body = base64.StdEncoding.EncodeToString(body)
	a.Payload.IntegratedTime, a.Payload.LogIndex, a.Payload.LogID = integrated.Unix(), 42, hex.EncodeToString(l.id)
	signed, err := json.Marshal(tlog.RekorPayload{Body: a.Payload.Body, IntegratedTime: a.Payload.IntegratedTime,
		LogIndex: a.Payload.LogIndex, LogID: a.Payload.LogID})
	must(t, err)
	canon, err := jsoncanonicalizer.Transform(signed)
	must(t, err)
	h := sha256.Sum256(canon)
	a.SignedEntryTimestamp, err = ecdsa.SignASN1(rand.Reader, l.key, h[:])
	must(t, err)
	return a
}

// A cosign legacy `.sig` whose only verified time is its Rekor bundle
// annotation (the signed entry timestamp of a transparency log entry, what
// cosign writes by default for the public-good Sigstore) verifies in the
// transparency-log mode; a tampered entry or one from an untrusted log
// does not. The certificate is the test Fulcio's; only the log is made here.
func TestLegacyRekorBundle(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s := keyless(t, ss, claims)
	log, untrusted := newTestLog(t), newTestLog(t)
	reg := testenv.GGCR(t)
	c := client(reg)
	p, err := policy.FromFlags(policy.Flags{Issuer: ss.Issuer.URL, Subject: claims.CertificateIdentity()})
	must(t, err)
	v := newVerifier(t, p, root.TrustedMaterialCollection{ss.TrustedRoot(), log.trusted(t)})

	for i, tc := range []struct {
		name  string
		entry func(payload, sig []byte, certPEM string) rekorAnnotation
		want  string
	}{
		{"intact", func(payload, sig []byte, certPEM string) rekorAnnotation {
			return log.entry(t, payload, sig, certPEM, time.Now())
		}, ""},
		{"integrated time moved", func(payload, sig []byte, certPEM string) rekorAnnotation {
			a := log.entry(t, payload, sig, certPEM, time.Now())
			a.Payload.IntegratedTime -= 3600
			return a
		}, "transparency log entry does not verify"},
		{"untrusted log", func(payload, sig []byte, certPEM string) rekorAnnotation {
			return untrusted.entry(t, payload, sig, certPEM, time.Now())
		}, "transparency log entry does not verify"},
		{"another signature's entry", func(payload, sig []byte, certPEM string) rekorAnnotation {
			return log.entry(t, append(payload, ' '), sig, certPEM, time.Now())
		}, "entry body is not a recognizable Rekor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pushRandom(t, reg, "rekor/app:"+itoa(i))
			payload, err := signing.SimpleSigningPayload(d, nil)
			must(t, err)
			layer, err := signing.SignLegacy(context.Background(), s, payload)
			must(t, err)
			// The log entry is the signature's only time.
			delete(layer.Annotations, signing.AnnotationTimestamp)
			sig, err := base64.StdEncoding.DecodeString(layer.Annotations[signing.AnnotationSignature])
			must(t, err)
			ann, err := json.Marshal(tc.entry(payload, sig, layer.Annotations[signing.AnnotationCertificate]))
			must(t, err)
			layer.Annotations[signing.AnnotationRekorBundle] = string(ann)
			_, err = signing.AttachLegacy(context.Background(), c, d, signing.LegacySignature, []signing.LegacyLayer{layer}, nil)
			must(t, err)

			r := v.Verify(context.Background(), c, d)
			if tc.want == "" {
				if !r.Passed || len(r.Signatures) != 1 || r.Signatures[0].Format != "legacy" || r.Signatures[0].Identity != claims.CertificateIdentity() {
					t.Fatalf("passed %v %+v %v", r.Passed, r.Signatures, r.Errors)
				}
				return
			}
			if r.Passed || !errorsContain(r, tc.want) {
				t.Fatalf("passed %v, errors %v; want %q", r.Passed, r.Errors, tc.want)
			}
			t.Logf("errors: %q", r.Errors)
		})
	}
}

// cosign v2 timestamped a legacy `.att` over the whole envelope JSON (v3
// and seal timestamp the DSSE signature, as bundles do); both verify, and
// a timestamp over anything else does not.
func TestLegacyAttestationTimestampOverEnvelope(t *testing.T) {
	ss := testenv.SharedSigstore(t)
	claims := testenv.GitHubRelease("example/fleet", "v0.1.0")
	s := keyless(t, ss, claims)
	reg := testenv.GGCR(t)
	c := client(reg)
	tsa := sgsign.NewTimestampAuthority(&sgsign.TimestampAuthorityOptions{URL: ss.TSAURL, Timeout: 30 * time.Second})
	p := parsePolicy(t, `apiVersion: seal.dev/v1alpha1
kind: Policy
rules:
  - name: att
    images: ["`+reg.Host+`/**"]
    signatures:
      authorities: [{keyless: {issuer: "`+ss.Issuer.URL+`", subject: "`+claims.CertificateIdentity()+`"}}]
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
`)
	v := newVerifier(t, p, ss.TrustedRoot())
	for i, tc := range []struct {
		name   string
		over   func(envelope []byte) []byte
		passes bool
	}{
		{"over the envelope", func(env []byte) []byte { return env }, true},
		{"over other bytes", func(env []byte) []byte { return append([]byte("x"), env...) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pushRandom(t, reg, "att/app:"+itoa(i))
			sign(t, c, s, d, signing.FormatBundle)
			h := mustHash(t, d)
			layer, err := signing.AttestLegacy(context.Background(), s, statement(t, d.Context(), h, "https://slsa.dev/provenance/v1", provenance(t, claims)))
			must(t, err)
			ts, err := tsa.GetTimestamp(context.Background(), tc.over(layer.Payload))
			must(t, err)
			ann, err := json.Marshal(map[string][]byte{"SignedRFC3161Timestamp": ts})
			must(t, err)
			layer.Annotations[signing.AnnotationTimestamp] = string(ann)
			_, err = signing.AttachLegacy(context.Background(), c, d, signing.LegacyAttestation, []signing.LegacyLayer{layer}, nil)
			must(t, err)
			r := v.Verify(context.Background(), c, d)
			if r.Passed != tc.passes {
				t.Fatalf("passed %v, errors %v", r.Passed, r.Errors)
			}
			if tc.passes && (len(r.Attestations) != 1 || r.Attestations[0].Format != "legacy") {
				t.Errorf("attestations %+v", r.Attestations)
			}
		})
	}
}

// A Sigstore bundle whose only verified time is a transparency log entry —
// what `cosign sign` writes against the public-good instance, where Rekor,
// not a TSA, vouches for the signing time — verifies in the
// transparency-log mode: the certificate is checked at the entry's
// integrated time, proven by the log's signed entry timestamp and inclusion
// proof. sigstore-go's virtual Sigstore plays Fulcio and Rekor (testenv has
// no Rekor server); the bundle reaches seal as a referrer like any other.
func TestBundleTransparencyLogTime(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	must(t, err)
	const identity, issuer = "release@example.com", "https://issuer.example"
	reg := testenv.GGCR(t)
	c := client(reg)
	p, err := policy.FromFlags(policy.Flags{Issuer: issuer, Subject: identity})
	must(t, err)
	withLog, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, nil, vs.RekorLogs())
	must(t, err)
	withoutLog, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, nil, nil)
	must(t, err)
	// The virtual Fulcio's certificates are valid for ten minutes from now.
	now := time.Now()

	for i, tc := range []struct {
		name       string
		trusted    root.TrustedMaterial
		integrated time.Time
		alter      func(*protorekor.TransparencyLogEntry)
		want       string
	}{
		{"logged while the certificate was valid", withLog, now.Add(time.Minute), nil, ""},
		{"logged after the certificate expired", withLog, now.Add(20 * time.Minute), nil, "certificate was not valid when the transparency log recorded the signature at"},
		{"log not trusted", withoutLog, now.Add(time.Minute), nil, "transparency log entry does not verify"},
		{"integrated time moved into the validity", withLog, now.Add(20 * time.Minute), func(e *protorekor.TransparencyLogEntry) {
			e.IntegratedTime = now.Add(time.Minute).Unix()
		}, "transparency log entry does not verify"},
		{"no entry: no time at all", withLog, now.Add(time.Minute), func(e *protorekor.TransparencyLogEntry) {
			*e = protorekor.TransparencyLogEntry{} // left out of the bundle
		}, "the signature has neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pushRandom(t, reg, "tlog/app:"+itoa(i))
			h := mustHash(t, d)
			st, err := signing.SignStatement(h, nil)
			must(t, err)
			b := tlogBundle(t, vs, identity, issuer, st, tc.integrated, tc.alter)
			forgeReferrer(t, c, d, b, signing.CosignSignPredicate)

			r := newVerifier(t, p, tc.trusted).Verify(context.Background(), c, d)
			if tc.want == "" {
				if !r.Passed || len(r.Signatures) != 1 || !r.Signatures[0].Verified || r.Signatures[0].Identity != identity || r.Signatures[0].Issuer != issuer {
					t.Fatalf("passed %v %+v %v", r.Passed, r.Signatures, r.Errors)
				}
				return
			}
			if r.Passed || !errorsContain(r, tc.want) {
				t.Fatalf("passed %v, errors %v; want %q", r.Passed, r.Errors, tc.want)
			}
		})
	}
}

// tlogBundle is a v0.3 bundle of a DSSE envelope over statement, signed
// with a certificate of vs's Fulcio for identity and logged in vs's Rekor at
// integrated (signed entry timestamp and inclusion proof), with no other
// timestamp; alter, when set, changes the log entry after it was signed.
func tlogBundle(t *testing.T, vs *ca.VirtualSigstore, identity, issuer string, statement []byte, integrated time.Time, alter func(*protorekor.TransparencyLogEntry)) []byte {
	t.Helper()
	ent, err := vs.AttestAtTime(identity, issuer, statement, integrated, true)
	must(t, err)
	vc, err := ent.VerificationContent()
	must(t, err)
	sc, err := ent.SignatureContent()
	must(t, err)
	env := sc.EnvelopeContent().RawEnvelope()
	entries, err := ent.TlogEntries()
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("%d log entries", len(entries))
	}
	tle := proto.Clone(entries[0].TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	// The virtual log keeps the signed entry timestamp to itself; sign the
	// same payload again for the bundle's inclusion promise.
	logID, err := vs.RekorLogID()
	must(t, err)
	set, err := vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          logID,
	})
	must(t, err)
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	var tles []*protorekor.TransparencyLogEntry
	if alter != nil {
		alter(tle)
	}
	if tle.LogId != nil {
		tles = append(tles, tle)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	must(t, err)
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	must(t, err)
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries: tles,
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	raw, err := protojson.Marshal(pb)
	must(t, err)
	return raw
}
