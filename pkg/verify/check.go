package verify

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/pkg/policy"
)

// signer is who made a signature that verified against the trusted
// material: a policy key, or the subject of a Fulcio certificate.
type signer struct {
	key  string
	cert *certificate.Summary
}

// identity is what a report shows of the signer.
func (s signer) identity() (identity, issuer string) {
	if s.cert != nil {
		return s.cert.SubjectAlternativeName, s.cert.Extensions.Issuer
	}
	return "key " + s.key, ""
}

// id tells signers apart for the threshold: a key, or a certificate's
// issuer and subject (two certificates for one workflow are one signer).
func (s signer) id() string {
	if s.cert != nil {
		return "cert\x00" + s.cert.Extensions.Issuer + "\x00" + s.cert.SubjectAlternativeName
	}
	return "key\x00" + s.key
}

// matches reports whether the signer is authority a, and if not, why.
func (s signer) matches(a policy.Authority) (bool, string) {
	switch {
	case a.Key != nil && s.cert == nil:
		if s.key == a.Key.Name {
			return true, ""
		}
		return false, fmt.Sprintf("signed with key %s, not %s", s.key, a.Key.Name)
	case a.Key != nil:
		return false, fmt.Sprintf("signed with a certificate, not key %s", a.Key.Name)
	case a.Keyless != nil && s.cert != nil:
		return a.Keyless.Matches(*s.cert)
	case a.Keyless != nil:
		return false, fmt.Sprintf("signed with key %s, not a certificate", s.key)
	}
	return false, "empty authority"
}

// matchAll returns the indexes of the authorities the signer is and, when it
// is none, why: the mismatch with the first authority of the signer's kind
// (a keyless one for a certificate), the interesting one to report.
func (s signer) matchAll(auths []policy.Authority) ([]int, string) {
	var idx []int
	var why, sameKind string
	for i, a := range auths {
		ok, reason := s.matches(a)
		if ok {
			idx = append(idx, i)
			continue
		}
		if why == "" {
			why = reason
		}
		if sameKind == "" && (a.Keyless != nil) == (s.cert != nil) {
			sameKind = reason
		}
	}
	if len(idx) > 0 {
		return idx, ""
	}
	if sameKind != "" {
		return nil, sameKind
	}
	return nil, why
}

// artifactFunc makes the artifact policy of one verification; WithArtifact
// consumes its reader, so each attempt needs a fresh one.
type artifactFunc func() sgverify.ArtifactPolicyOption

// check verifies a signed entity against the trusted material: a
// certificate at the time of a trusted timestamp (TSA first, then a
// transparency log entry), or a key of the policy. It returns who signed.
func (v *Verifier) check(ent sgverify.SignedEntity, artifact artifactFunc) (signer, error) {
	vc, err := ent.VerificationContent()
	if err != nil {
		return signer{}, fmt.Errorf("verification material: %w", err)
	}
	if leaf := vc.Certificate(); leaf != nil {
		return v.checkCertificate(ent, leaf, artifact)
	}
	if vc.PublicKey() == nil {
		return signer{}, errors.New("neither a certificate nor a key")
	}
	if len(v.keys) == 0 {
		return signer{}, errors.New("signed with a key, and the policy names no keys")
	}
	var first error
	for _, k := range v.keys {
		_, err := k.v.Verify(ent, sgverify.NewPolicy(artifact(), sgverify.WithKey()))
		if err == nil {
			return signer{key: k.name}, nil
		}
		if first == nil {
			first = err
		}
	}
	if len(v.keys) == 1 {
		return signer{}, fmt.Errorf("does not verify with key %s: %s", v.keys[0].name, explain(first))
	}
	return signer{}, fmt.Errorf("does not verify with any policy key (%s): %s", strings.Join(v.keyNames(), ", "), explain(first))
}

func (v *Verifier) checkCertificate(ent sgverify.SignedEntity, leaf *x509.Certificate, artifact artifactFunc) (signer, error) {
	if v.trusted == nil {
		return signer{}, errors.New("signed with a certificate, but no trusted root was given to check it")
	}
	var modes []*sgverify.Verifier
	if ts, err := ent.Timestamps(); err == nil && len(ts) > 0 {
		modes = append(modes, v.tsa)
	}
	if tl, err := ent.TlogEntries(); err == nil && len(tl) > 0 {
		modes = append(modes, v.tlog)
	}
	if len(modes) == 0 {
		return signer{}, errors.New("no trusted timestamp: the certificate can only be checked at a time a timestamp authority or a transparency log vouches for, and the signature has neither")
	}
	var first error
	for _, m := range modes {
		res, err := m.Verify(ent, sgverify.NewPolicy(artifact(), sgverify.WithoutIdentitiesUnsafe()))
		if err == nil {
			if res.Signature == nil || res.Signature.Certificate == nil {
				return signer{}, errors.New("verified without a certificate summary")
			}
			return signer{cert: res.Signature.Certificate}, nil
		}
		if first == nil {
			first = err
		}
	}
	if strings.Contains(first.Error(), "failed to verify leaf certificate") {
		return signer{}, v.diagnoseCertificate(ent, leaf)
	}
	// sigstore-go files this under the log's verification, but the entry
	// verified: what failed is the certificate at the time it proves.
	if strings.Contains(first.Error(), "integrated time outside certificate validity") {
		return signer{}, loggedOutsideValidity(ent, leaf)
	}
	return signer{}, errors.New(explain(first))
}

// loggedOutsideValidity says when the transparency log recorded a signature
// whose certificate was not valid then.
func loggedOutsideValidity(ent sgverify.SignedEntity, leaf *x509.Certificate) error {
	validity := validityOf(leaf)
	if entries, err := ent.TlogEntries(); err == nil && len(entries) > 0 {
		return fmt.Errorf("certificate was not valid when the transparency log recorded the signature at %s (%s)",
			entries[0].IntegratedTime().UTC().Format(time.RFC3339), validity)
	}
	return fmt.Errorf("certificate was not valid when the transparency log recorded the signature (%s)", validity)
}

// explain turns sigstore-go's errors, named after its verification steps,
// into reasons a person understands; sigstore-go's own words follow.
func explain(err error) string {
	msg := err.Error()
	for _, m := range []struct{ prefix, reason string }{
		{"failed to verify timestamps", "timestamp does not verify against a trusted timestamp authority"},
		{"failed to verify log inclusion", "transparency log entry does not verify against a trusted log"},
		{"failed to verify signed certificate timestamp", "certificate has no valid SCT from a trusted CT log"},
		{"failed to verify signature", "signature does not verify over the signed content (altered content, or another key)"},
		{"failed to get signature verifier", "signature does not verify (unusable key)"},
		{"failed to verify certificate identity", "certificate identity does not match"},
	} {
		if rest, ok := strings.CutPrefix(msg, m.prefix); ok {
			return m.reason + rest // sigstore-go's detail, after its colon
		}
	}
	return msg
}

// diagnoseCertificate says why a certificate did not verify, which
// sigstore-go reports only as "leaf certificate verification failed": it
// chains to no trusted Fulcio CA at all, or it does but was not valid at the
// signing time (expired, or not yet valid).
func (v *Verifier) diagnoseCertificate(ent sgverify.SignedEntity, leaf *x509.Certificate) error {
	// As sigstore-go does: Go does not handle the OtherName SAN some Fulcio
	// certificates carry, which would fail every chain here.
	c := *leaf
	c.UnhandledCriticalExtensions = nil
	for _, oid := range leaf.UnhandledCriticalExtensions {
		if !oid.Equal(cryptoutils.SANOID) {
			c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, oid)
		}
	}
	leaf = &c
	chains := false
	for _, ca := range v.trusted.FulcioCertificateAuthorities() {
		// Within the certificate's own validity: does it chain at all?
		if _, err := ca.Verify(leaf, leaf.NotBefore.Add(time.Second)); err == nil {
			chains = true
			break
		}
	}
	validity := validityOf(leaf)
	if !chains {
		return fmt.Errorf("certificate does not chain to a trusted Fulcio CA (issuer %q)", issuerName(leaf))
	}
	if ts, err := sgverify.VerifySignedTimestampWithThreshold(ent, v.trusted, 1); err == nil && len(ts) > 0 {
		return fmt.Errorf("certificate was not valid when the signature was timestamped at %s (%s)",
			ts[0].Time.UTC().Format(time.RFC3339), validity)
	}
	return fmt.Errorf("certificate was not valid at the signing time (%s)", validity)
}

// validityOf is a certificate's validity period, for messages.
func validityOf(c *x509.Certificate) string {
	return fmt.Sprintf("valid %s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}
