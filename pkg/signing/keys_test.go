package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/seal-dev/seal/pkg/fault"
)

const testPassword = "seal-test-password-7f3a9c1e"

// sharedKey is the test binary's seal key pair: scrypt makes each
// generation and decryption cost ~0.2s (seconds under -race), so tests that
// need a key file share one; tests that need more keys use quickKeyFiles.
var sharedKey struct {
	once      sync.Once
	priv, pub []byte
	key       *ecdsa.PrivateKey
	err       error
}

// testKey returns the shared key pair (password testPassword) and
// registers the private key as a secret.
func testKey(t testing.TB) (priv, pub []byte) {
	t.Helper()
	sharedKey.once.Do(func() {
		sharedKey.priv, sharedKey.pub, sharedKey.err = GenerateKeyPair([]byte(testPassword))
		if sharedKey.err == nil {
			sharedKey.key, sharedKey.err = LoadPrivateKey(sharedKey.priv, []byte(testPassword))
		}
	})
	must(t, sharedKey.err)
	secret("seal private key PEM", string(sharedKey.priv))
	return sharedKey.priv, sharedKey.pub
}

func TestGenerateKeyPairFormat(t *testing.T) {
	secret("test password", testPassword)
	priv, pub := testKey(t)
	block, rest := pem.Decode(priv)
	if block == nil || block.Type != SigstorePrivateKeyPEMType || len(rest) != 0 {
		t.Fatalf("private key PEM: %v type %q rest %d", block != nil, block.Type, len(rest))
	}
	// The envelope is go-securesystemslib's: scrypt with the standard
	// parameters cosign uses (N=2^16, r=8, p=1) and nacl/secretbox.
	var env struct {
		KDF struct {
			Name   string
			Params struct{ N, R, P int }
		}
		Cipher struct{ Name string }
	}
	if err := json.Unmarshal(block.Bytes, &env); err != nil {
		t.Fatal(err)
	}
	if env.KDF.Name != "scrypt" || env.KDF.Params.N != 1<<16 || env.KDF.Params.R != 8 || env.KDF.Params.P != 1 || env.Cipher.Name != "nacl/secretbox" {
		t.Fatalf("envelope parameters: %+v", env)
	}
	der, err := encrypted.Decrypt(block.Bytes, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", k)
	}
	pb, _ := pem.Decode(pub)
	if pb == nil || pb.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM type: %v", pb)
	}
	got, err := LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !ec.PublicKey.Equal(got) {
		t.Fatal("public key file does not match the private key")
	}
}

func TestLoadPrivateKey(t *testing.T) {
	priv, pub := testKey(t)
	pk, _ := LoadPublicKey(pub)
	// The older PEM type cosign also reads.
	block, _ := pem.Decode(priv)
	oldType := pem.EncodeToMemory(&pem.Block{Type: CosignPrivateKeyPEMType, Bytes: block.Bytes})
	other := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})
	// cosign can hold RSA keys in the same envelope; the key signer cannot use them.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	rder, err := x509.MarshalPKCS8PrivateKey(rk)
	must(t, err)
	renc, err := encrypted.Encrypt(rder, []byte(testPassword))
	must(t, err)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyPEMType, Bytes: renc})
	tests := []struct {
		name     string
		pem      []byte
		password string
		wantErr  string
	}{
		{"sigstore type", priv, testPassword, ""},
		{"cosign type", oldType, testPassword, ""},
		{"wrong password", priv, "not-the-password", "wrong password"},
		{"empty password", priv, "", "wrong password"},
		{"not PEM", []byte("garbage"), testPassword, "no PEM block"},
		{"unencrypted PEM type", other, testPassword, "not a cosign encrypted private key"},
		{"rsa key", rsaPEM, testPassword, "RSA keys are not supported"},
		{"damaged envelope", pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyPEMType, Bytes: []byte("{}")}), testPassword, "private key:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadPrivateKey(tt.pem, []byte(tt.password))
			recordErr("LoadPrivateKey "+tt.name, err)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !k.PublicKey.Equal(pk) {
					t.Fatal("loaded key does not match the public key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if fault.KindOf(err) != fault.Input {
				t.Fatalf("kind %v, want input", fault.KindOf(err))
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if tt.name == "wrong password" && !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("not ErrWrongPassword: %v", err)
			}
		})
	}
}

// cosign reads seal's keys: `cosign public-key` decrypts the private key and
// prints the same public key; a blob signed by cosign with seal's key
// verifies with seal's public key.
func TestCosignReadsSealKey(t *testing.T) {
	dir := t.TempDir()
	priv, pub := testKey(t)
	must(t, os.WriteFile(filepath.Join(dir, "seal.key"), priv, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "seal.pub"), pub, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "blob.txt"), []byte("hello seal\n"), 0o644))
	env := []string{"COSIGN_PASSWORD=" + testPassword}

	out, err := cosign(t, dir, env, "public-key", "--key", "seal.key")
	if err != nil {
		t.Fatalf("cosign public-key: %v\n%s", err, out)
	}
	if !strings.Contains(out, string(pub)) {
		t.Fatalf("cosign public-key printed a different key:\n%s\nwant\n%s", out, pub)
	}
	out, err = cosign(t, dir, env, "sign-blob", "--key", "seal.key", "--use-signing-config=false",
		"--tlog-upload=false", "--bundle", "blob.bundle", "--yes", "blob.txt")
	if err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	out, err = cosign(t, dir, nil, "verify-blob", "--key", "seal.pub", "--bundle", "blob.bundle",
		"--insecure-ignore-tlog=true", "blob.txt")
	if err != nil {
		t.Fatalf("cosign verify-blob: %v\n%s", err, out)
	}
	// And a wrong password is refused by cosign too: the file is really encrypted.
	if out, err := cosign(t, dir, []string{"COSIGN_PASSWORD=wrong"}, "public-key", "--key", "seal.key"); err == nil {
		t.Fatalf("cosign accepted a wrong password:\n%s", out)
	}
}

// seal reads cosign's keys: `cosign generate-key-pair` output loads, the
// public key matches, and a blob signed by seal's key signer with cosign's
// key passes `cosign verify-blob` with cosign's public key.
func TestSealReadsCosignKey(t *testing.T) {
	dir := t.TempDir()
	out, err := cosign(t, dir, []string{"COSIGN_PASSWORD=" + testPassword}, "generate-key-pair")
	if err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	privPEM, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	must(t, err)
	secret("cosign private key PEM", string(privPEM))
	pubPEM, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	must(t, err)

	priv, err := LoadPrivateKey(privPEM, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPEM)
	must(t, err)
	if !priv.PublicKey.Equal(pub) {
		t.Fatal("cosign.key and cosign.pub do not match as loaded by seal")
	}
	_, err = LoadPrivateKey(privPEM, []byte("wrong"))
	recordErr("LoadPrivateKey cosign wrong password", err)
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}

	s, err := NewKeySigner(priv, Services{})
	must(t, err)
	blob := []byte("signed by seal with cosign's key\n")
	must(t, os.WriteFile(filepath.Join(dir, "blob.txt"), blob, 0o644))
	b, err := s.Sign(context.Background(), &sign.PlainData{Data: blob})
	must(t, err)
	bj, err := marshalBundle(b)
	must(t, err)
	record("key signer bundle", bj)
	must(t, os.WriteFile(filepath.Join(dir, "blob.bundle"), bj, 0o644))
	out, err = cosign(t, dir, nil, "verify-blob", "--key", "cosign.pub", "--bundle", "blob.bundle",
		"--insecure-ignore-tlog=true", "blob.txt")
	if err != nil {
		t.Fatalf("cosign verify-blob of seal's bundle: %v\n%s", err, out)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
