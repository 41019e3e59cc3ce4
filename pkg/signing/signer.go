package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/pkg/fault"
)

// Signer turns content (a DSSE payload or a plain message) into a Sigstore
// bundle: the signature plus its verification material (a public key hint or
// a Fulcio certificate), RFC 3161 timestamps and transparency log entries as
// configured. Both encoders (bundle referrer, legacy tags) are built on it.
// Implementations are safe for concurrent use.
type Signer interface {
	Sign(ctx context.Context, content sign.Content) (*protobundle.Bundle, error)
	// PublicKey is the key signatures verify with (for keyless, the
	// ephemeral key certified by Fulcio).
	PublicKey() crypto.PublicKey
}

// Services are the Sigstore services a signer talks to besides its key.
type Services struct {
	// FulcioURL issues the certificate of a keyless signer.
	FulcioURL string
	// TimestampURLs are RFC 3161 timestamp authorities; every bundle gets a
	// timestamp from each.
	TimestampURLs []string
	// RekorURL, when set, records every signature in that transparency log.
	RekorURL string
	// RekorVersion is the Rekor API major version (1 when zero).
	RekorVersion uint32
	// Transport carries the Fulcio and TSA requests (tests pass one that
	// trusts a test CA); nil is http.DefaultTransport.
	Transport http.RoundTripper
	// Timeout bounds each service request (30s when zero).
	Timeout time.Duration
}

// ServicesFromSigningConfig selects service URLs from a Sigstore signing
// config (the JSON `cosign signing-config create` and the public-good TUF
// repository distribute), as cosign does: one Fulcio, the TSAs and Rekor logs
// its selectors ask for.
func ServicesFromSigningConfig(data []byte) (Services, error) {
	sc, err := root.NewSigningConfigFromJSON(data)
	if err != nil {
		return Services{}, fault.Inputf("signing config: %v", err)
	}
	now := time.Now()
	var s Services
	if len(sc.FulcioCertificateAuthorityURLs()) > 0 {
		f, err := root.SelectService(sc.FulcioCertificateAuthorityURLs(), sign.FulcioAPIVersions, now)
		if err != nil {
			return Services{}, fault.Inputf("signing config: fulcio: %v", err)
		}
		s.FulcioURL = f.URL
	}
	if len(sc.TimestampAuthorityURLs()) > 0 {
		tsas, err := root.SelectServices(sc.TimestampAuthorityURLs(), sc.TimestampAuthorityURLsConfig(),
			sign.TimestampAuthorityAPIVersions, now)
		if err != nil {
			return Services{}, fault.Inputf("signing config: timestamp authorities: %v", err)
		}
		for _, t := range tsas {
			s.TimestampURLs = append(s.TimestampURLs, t.URL)
		}
	}
	if len(sc.RekorLogURLs()) > 0 {
		logs, err := root.SelectServices(sc.RekorLogURLs(), sc.RekorLogURLsConfig(), sign.RekorAPIVersions, now)
		if err != nil {
			return Services{}, fault.Inputf("signing config: rekor: %v", err)
		}
		if len(logs) > 1 {
			return Services{}, fault.Inputf("signing config: %d rekor logs selected; seal writes to one", len(logs))
		}
		if len(logs) == 1 {
			s.RekorURL, s.RekorVersion = logs[0].URL, logs[0].MajorAPIVersion
		}
	}
	return s, nil
}

func (s Services) bundleOptions() sign.BundleOptions {
	var o sign.BundleOptions
	for _, u := range s.TimestampURLs {
		o.TimestampAuthorities = append(o.TimestampAuthorities, sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{
			URL: u, Timeout: s.Timeout, Retries: 1, Transport: s.Transport,
		}))
	}
	if s.RekorURL != "" {
		o.TransparencyLogs = append(o.TransparencyLogs, sign.NewRekor(&sign.RekorOptions{
			BaseURL: s.RekorURL, Timeout: s.Timeout, Retries: 1, Version: s.RekorVersion,
		}))
	}
	return o
}

// KeySigner signs with a private key from a cosign key file. Its bundles
// carry a public key hint, the SHA-256 of the PKIX key in base64 — what
// cosign writes, so `cosign verify --key` matches them.
type KeySigner struct {
	kp   *keypair
	opts sign.BundleOptions
}

// NewKeySigner signs with key; svc may add timestamps and a log entry
// (its FulcioURL is ignored: a key signer has no certificate).
func NewKeySigner(key *ecdsa.PrivateKey, svc Services) (*KeySigner, error) {
	kp, err := newKeypair(key)
	if err != nil {
		return nil, err
	}
	return &KeySigner{kp: kp, opts: svc.bundleOptions()}, nil
}

// Sign implements Signer.
func (s *KeySigner) Sign(ctx context.Context, content sign.Content) (*protobundle.Bundle, error) {
	o := s.opts
	o.Context = ctx
	b, err := sign.Bundle(content, s.kp, o)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return b, nil
}

// PublicKey implements Signer.
func (s *KeySigner) PublicKey() crypto.PublicKey { return s.kp.GetPublicKey() }

// keypair adapts an ECDSA key to sigstore-go's sign.Keypair, so that
// sign.Bundle does the bundle assembly for keys exactly as for ephemeral
// keys.
type keypair struct {
	key    *ecdsa.PrivateKey
	hash   crypto.Hash
	hint   []byte
	pemStr string
}

func newKeypair(key *ecdsa.PrivateKey) (*keypair, error) {
	h, err := hashFor(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return &keypair{
		key:    key,
		hash:   h,
		hint:   []byte(base64.StdEncoding.EncodeToString(sum[:])),
		pemStr: string(pemBytes),
	}, nil
}

// String keeps the key out of any accidental %v.
func (k *keypair) String() string { return "keypair(" + string(k.hint) + ")" }

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	switch k.hash {
	case crypto.SHA384:
		return protocommon.HashAlgorithm_SHA2_384
	case crypto.SHA512:
		return protocommon.HashAlgorithm_SHA2_512
	}
	return protocommon.HashAlgorithm_SHA2_256
}

func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	switch k.hash {
	case crypto.SHA384:
		return protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
	case crypto.SHA512:
		return protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512
	}
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (k *keypair) GetHint() []byte                  { return k.hint }
func (k *keypair) GetKeyAlgorithm() string          { return "ECDSA" }
func (k *keypair) GetPublicKey() crypto.PublicKey   { return &k.key.PublicKey }
func (k *keypair) GetPublicKeyPem() (string, error) { return k.pemStr, nil }

// SignData signs the digest of data; it returns the signature and the digest,
// as sign.Keypair requires.
func (k *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := k.hash.New()
	h.Write(data)
	digest := h.Sum(nil)
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest)
	if err != nil {
		return nil, nil, err
	}
	return sig, digest, nil
}

// redact removes secret from err's message: services sometimes echo what
// they were sent, and a token must never reach a log. The original error is
// not kept in the chain (anything unwrapping it could print it); only its
// context cancellation is.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), secret, "[REDACTED]")
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("%s: %w", msg, ctxErr)
	}
	return errors.New(msg)
}

func contextError(err error) error {
	for _, e := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return e
		}
	}
	return nil
}
