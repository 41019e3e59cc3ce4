package signing

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/seal-dev/seal/pkg/fault"
)

// KeylessOptions configure a KeylessSigner.
type KeylessOptions struct {
	Services
	// Token yields the OIDC identity token Fulcio certifies.
	Token TokenSource
	// TrustedRoot, when set, verifies every bundle right after signing
	// (certificate chain, timestamps, log entries), so a misconfigured
	// service fails the signing rather than the first verification.
	TrustedRoot root.TrustedMaterial
}

// KeylessSigner signs with an ephemeral ECDSA P-256 key certified by Fulcio
// for an OIDC identity. One key and one certificate serve a whole batch (as
// cosign's caching provider does): a batch of 100 images makes one Fulcio
// request, not 100. The certificate is renewed when it is about to expire.
type KeylessSigner struct {
	kp   *sign.EphemeralKeypair
	cert *cachedCert
	opts sign.BundleOptions
}

// certRenewMargin is how much validity a cached certificate must have left
// to be used for another signature: the TSA timestamp taken after signing
// must fall inside it. Fulcio certificates live 10 minutes.
const certRenewMargin = 2 * time.Minute

// NewKeylessSigner checks the options; no service is contacted until the
// first Sign.
func NewKeylessSigner(opts KeylessOptions) (*KeylessSigner, error) {
	if opts.FulcioURL == "" {
		return nil, fault.Inputf("keyless signing needs a Fulcio URL (--fulcio-url or --signing-config)")
	}
	if opts.Token == nil {
		return nil, fault.Inputf("keyless signing needs an identity token (--identity-token, or GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL)")
	}
	if len(opts.TimestampURLs) == 0 && opts.RekorURL == "" {
		// A Fulcio certificate outlives nothing: without a timestamp or a log
		// entry no verifier can tell the signature was made while it was valid.
		return nil, fault.Inputf("keyless signing needs a timestamp authority or a Rekor log (--timestamp-url, --rekor-url or --signing-config)")
	}
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	bo := opts.bundleOptions()
	bo.TrustedRoot = opts.TrustedRoot
	return &KeylessSigner{
		kp: kp,
		cert: &cachedCert{
			fulcio: sign.NewFulcio(&sign.FulcioOptions{
				BaseURL: opts.FulcioURL, Timeout: opts.Timeout, Retries: 1, Transport: opts.Transport,
			}),
			tokens: opts.Token,
		},
		opts: bo,
	}, nil
}

// Sign implements Signer.
func (s *KeylessSigner) Sign(ctx context.Context, content sign.Content) (*protobundle.Bundle, error) {
	o := s.opts
	o.Context = ctx
	o.CertificateProvider = s.cert
	b, err := sign.Bundle(content, s.kp, o)
	if err != nil {
		var ce certError
		if errors.As(err, &ce) {
			return nil, ce.err
		}
		return nil, fault.Wrap(fault.Operational, fmt.Errorf("keyless sign: %w", err))
	}
	return b, nil
}

// PublicKey implements Signer.
func (s *KeylessSigner) PublicKey() crypto.PublicKey { return s.kp.GetPublicKey() }

// Certificate returns the current Fulcio certificate, fetching it if needed.
// Callers use it to report the identity they sign as.
func (s *KeylessSigner) Certificate(ctx context.Context) (*x509.Certificate, error) {
	der, err := s.cert.GetCertificate(ctx, s.kp, nil)
	if err != nil {
		var ce certError
		if errors.As(err, &ce) {
			return nil, ce.err
		}
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// cachedCert is a sign.CertificateProvider that asks Fulcio once and reuses
// the certificate while it has certRenewMargin of validity left.
type cachedCert struct {
	fulcio *sign.Fulcio
	tokens TokenSource

	mu       sync.Mutex
	der      []byte
	notAfter time.Time
}

// certError carries a classified certificate error through sign.Bundle,
// which wraps nothing it returns.
type certError struct{ err error }

func (e certError) Error() string { return e.err.Error() }

func (c *cachedCert) GetCertificate(ctx context.Context, kp sign.Keypair, _ *sign.CertificateProviderOptions) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.der != nil && time.Until(c.notAfter) > certRenewMargin {
		return c.der, nil
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, certError{fmt.Errorf("identity token: %w", err)}
	}
	der, err := c.fulcio.GetCertificate(ctx, kp, &sign.CertificateProviderOptions{IDToken: tok})
	if err != nil {
		return nil, certError{fault.Wrap(fault.Operational, fmt.Errorf("fulcio certificate: %w", redact(err, tok)))}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, certError{fault.Operationalf("fulcio certificate: %v", err)}
	}
	if time.Until(cert.NotAfter) <= certRenewMargin {
		return nil, certError{fault.Operationalf("fulcio certificate: valid only until %s", cert.NotAfter.UTC().Format(time.RFC3339))}
	}
	c.der, c.notAfter = der, cert.NotAfter
	return der, nil
}
