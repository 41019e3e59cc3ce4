// Package verify decides whether images pass a policy (POLICY.md): for each
// image it resolves the reference once, finds the rule, discovers the
// signatures and attestations attached to the digest (and to its platform
// manifests when the rule asks for per-platform attestations), verifies
// each with sigstore-go against the trusted material, and then applies the
// policy's checks explicitly: the statement's subject is the manifest, the
// predicate type is the one expected (a provenance statement never counts
// as a signature), the signer is one of the rule's authorities, the
// threshold is met by distinct signers, attestation conditions hold.
//
// A Verifier is built once per run (trusted material loaded once, one
// sigstore-go verifier per verification mode) and is safe for concurrent
// use; VerifyAll runs it over a batch with a bounded pool of workers that
// share one registry client.
//
// Decisions the design leaves open, as implemented:
//
//   - Discovery is lazy, to stay at the request floor: OCI referrers are
//     listed for every manifest that needs checking, a referrer's manifest is
//     read only when its listing does not already exclude it (another
//     predicate type), and cosign's legacy `.sig`/`.att` tags are read only
//     when the referrers did not satisfy the rule for that manifest. The
//     result therefore lists the legacy signatures only when they were needed.
//   - A keyless signature is checked at the time a trusted timestamp
//     authority (RFC 3161) vouches for, else at the time of a trusted
//     transparency log entry; never at the current time. Signed certificate
//     timestamps are required when the trusted material lists CT logs.
//   - A key signature needs no timestamp: keys have no validity period.
//   - The threshold counts distinct signers (a key, or a certificate's issuer
//     and subject) matched one-to-one to distinct authorities, so neither
//     one signer signing twice nor one certificate matching two overlapping
//     authorities can meet a threshold of 2.
//   - Platforms: an attestation with `platforms: all` is needed on every
//     platform manifest of an index (BuildKit attestation manifests and
//     unknown/unknown entries are not platforms); the default accepts one on
//     the index or one on every platform manifest.
package verify

import (
	"crypto"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/policy"
)

// Verifier verifies images against one policy and one set of trusted
// material. It is safe for concurrent use.
type Verifier struct {
	policy  *policy.Policy
	trusted root.TrustedMaterial
	now     func() time.Time

	// One sigstore-go verifier per mode, built once: certificates checked
	// at a TSA's time, at a transparency log's time, and one per policy key.
	tsa, tlog *sgverify.Verifier
	keys      []keyVerifier // sorted by name
}

type keyVerifier struct {
	name string
	v    *sgverify.Verifier
}

// Option configures a Verifier.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock sets the clock that decides whether an exception has expired
// (default time.Now). Signatures are never checked at this time: a
// certificate is checked at the time of its trusted timestamp.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// New builds the verifier of a run. trusted holds the Fulcio CAs, timestamp
// authorities and transparency logs keyless signatures are checked against;
// it may be nil when the policy only has key authorities (a keyless
// signature then never verifies).
func New(p *policy.Policy, trusted root.TrustedMaterial, opts ...Option) (*Verifier, error) {
	if p == nil {
		return nil, fault.Inputf("verify: no policy")
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	v := &Verifier{policy: p, trusted: trusted, now: o.now}
	if trusted != nil {
		var common []sgverify.VerifierOption
		if len(trusted.CTLogs()) > 0 {
			common = append(common, sgverify.WithSignedCertificateTimestamps(1))
		}
		// The statement is read from the verified DSSE payload by this
		// package; sigstore-go need not materialise the predicate.
		common = append(common, sgverify.WithoutStatementPredicate())
		var err error
		v.tsa, err = sgverify.NewVerifier(trusted, append([]sgverify.VerifierOption{sgverify.WithSignedTimestamps(1)}, common...)...)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		v.tlog, err = sgverify.NewVerifier(trusted, append([]sgverify.VerifierOption{
			sgverify.WithTransparencyLog(1), sgverify.WithIntegratedTimestamps(1)}, common...)...)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	names := make([]string, 0, len(p.Trust.Keys))
	for name := range p.Trust.Keys {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k := p.Trust.Keys[name]
		kv, err := newKeyVerifier(k.PublicKey)
		if err != nil {
			return nil, fault.Inputf("verify: key %s: %v", name, err)
		}
		v.keys = append(v.keys, keyVerifier{name: name, v: kv})
	}
	return v, nil
}

// newKeyVerifier is a sigstore-go verifier whose only trusted material is
// pub. Key signatures carry a hint, not the key; the hint is not trusted for
// anything, each policy key is simply tried.
func newKeyVerifier(pub crypto.PublicKey) (*sgverify.Verifier, error) {
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, err
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	return sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps(), sgverify.WithoutStatementPredicate())
}

// keyNames lists the policy's key names, for messages.
func (v *Verifier) keyNames() []string {
	out := make([]string, 0, len(v.keys))
	for _, k := range v.keys {
		out = append(out, k.name)
	}
	return slices.Clip(out)
}
