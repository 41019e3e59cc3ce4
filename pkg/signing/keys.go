// Package signing makes cosign-compatible signatures: keys in cosign's file
// format, signers (a key, or keyless through Fulcio), and encoders that turn a
// signature into what is stored next to an image — a Sigstore bundle referrer
// (cosign v3) or cosign's legacy `.sig`/`.att` tag images. Encoders return
// values; pushing them is the caller's business (see Sign).
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/pkg/fault"
)

// PEM block types of cosign's encrypted private keys. cosign writes the
// SIGSTORE one since v2 and still reads the older COSIGN one; so do we.
const (
	SigstorePrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	CosignPrivateKeyPEMType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// maxKeyFile bounds what we are willing to parse as a key file; real ones are
// well under 1 KiB.
const maxKeyFile = 64 << 10

// ErrWrongPassword is returned (wrapped as an input error) when a private key
// does not decrypt. secretbox cannot tell a wrong password from a damaged
// file, so the message names both.
var ErrWrongPassword = errors.New("wrong password for the private key (or the key file is damaged)")

// GenerateKeyPair creates an ECDSA P-256 key pair in cosign's format: the
// private key as PKCS#8 encrypted with scrypt + nacl/secretbox (the parameters
// go-securesystemslib's encrypted.Encrypt uses, as cosign does) in an
// `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block, and the public key as PKIX PEM.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	enc, err := encrypted.Encrypt(der, password)
	clear(der)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	privPEM = pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyPEMType, Bytes: enc})
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return privPEM, pubPEM, nil
}

// LoadPrivateKey decrypts a cosign private key file (either PEM type). Only
// ECDSA keys are accepted: they are what cosign generates by default and what
// the key signer knows how to use. Errors never contain key material; a wrong
// password is ErrWrongPassword, an input error.
func LoadPrivateKey(pemBytes, password []byte) (*ecdsa.PrivateKey, error) {
	if len(pemBytes) > maxKeyFile {
		return nil, fault.Inputf("private key: file larger than %d bytes", maxKeyFile)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fault.Inputf("private key: no PEM block found")
	}
	if block.Type != SigstorePrivateKeyPEMType && block.Type != CosignPrivateKeyPEMType {
		return nil, fault.Inputf("private key: PEM type %q is not a cosign encrypted private key (want %q)",
			block.Type, SigstorePrivateKeyPEMType)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		if err.Error() == "encrypted: decryption failed" {
			return nil, fault.Wrap(fault.Input, ErrWrongPassword)
		}
		// The other errors describe the envelope (unknown KDF, bad JSON),
		// never the plaintext.
		return nil, fault.Inputf("private key: %v", err)
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// Do not wrap: x509 errors are about structure, but keep the
		// message fixed so nothing derived from the plaintext leaks.
		return nil, fault.Inputf("private key: decrypted data is not a PKCS#8 private key")
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fault.Inputf("private key: %s keys are not supported, only ECDSA", keyKind(key))
	}
	if _, err := hashFor(&ec.PublicKey); err != nil {
		return nil, err
	}
	return ec, nil
}

// LoadPublicKey parses a PKIX public key in PEM (cosign's `.pub`). ECDSA,
// RSA and Ed25519 keys are returned; verifiers decide what they accept.
func LoadPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	if len(pemBytes) > maxKeyFile {
		return nil, fault.Inputf("public key: file larger than %d bytes", maxKeyFile)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fault.Inputf("public key: no PEM block found")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fault.Inputf("public key: PEM type %q, want \"PUBLIC KEY\"", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fault.Inputf("public key: %v", err)
	}
	return pub, nil
}

// hashFor is the hash cosign pairs with an ECDSA curve.
func hashFor(pub *ecdsa.PublicKey) (crypto.Hash, error) {
	switch pub.Curve {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	case elliptic.P521():
		return crypto.SHA512, nil
	}
	return 0, fault.Inputf("private key: ECDSA curve %s is not supported", pub.Curve.Params().Name)
}

func keyKind(k any) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}
