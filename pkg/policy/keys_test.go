package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParsePublicKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkix := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// A 1024-bit RSA key is too small, but valid DER: build it from the 2048 one's shape.
	small := &rsa.PublicKey{N: new(big.Int).Rsh(rsaKey.N, 1024), E: 65537}
	privDER, _ := x509.MarshalPKCS8PrivateKey(edPriv)

	tests := []struct {
		name    string
		pem     string
		wantErr string
		check   func(any) bool
	}{
		{"ecdsa", pemBlock("PUBLIC KEY", pkix(&ec.PublicKey)), "", func(k any) bool { _, ok := k.(*ecdsa.PublicKey); return ok }},
		{"ed25519", pemBlock("PUBLIC KEY", pkix(edPub)), "", func(k any) bool { _, ok := k.(ed25519.PublicKey); return ok }},
		{"rsa pkix", pemBlock("PUBLIC KEY", pkix(&rsaKey.PublicKey)), "", func(k any) bool { _, ok := k.(*rsa.PublicKey); return ok }},
		{"rsa pkcs1", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), "", func(k any) bool { _, ok := k.(*rsa.PublicKey); return ok }},
		{"rsa too small", pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(small)), "too small", nil},
		{"private key", pemBlock("PRIVATE KEY", privDER), `PEM block "PRIVATE KEY" is not a public key`, nil},
		{"not PEM", "hello", "no PEM block", nil},
		{"two keys", pemBlock("PUBLIC KEY", pkix(edPub)) + pemBlock("PUBLIC KEY", pkix(edPub)), "more than one PEM block", nil},
		{"garbage DER", pemBlock("PUBLIC KEY", []byte("garbage")), "parse public key", nil},
	}
	for _, tt := range tests {
		k, err := parsePublicKey([]byte(tt.pem))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			// Errors never carry key material.
			if err != nil && strings.Contains(tt.pem, "\n") && strings.Contains(err.Error(), strings.Split(tt.pem, "\n")[1]) {
				t.Errorf("%s: the error quotes the key: %v", tt.name, err)
			}
			continue
		}
		if err != nil || !tt.check(k) {
			t.Errorf("%s: got %T, %v", tt.name, k, err)
		}
	}
}

func TestInlinePEMKey(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(edPub)
	key := pemBlock("PUBLIC KEY", der)
	doc := "apiVersion: seal.dev/v1alpha1\nkind: Policy\ntrust:\n  keys:\n    inline:\n      pem: |\n" +
		"        " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n        ") + "\n" +
		"rules:\n  - name: r\n    images: [\"**\"]\n    signatures: {authorities: [{key: inline}]}\n"
	p, err := parseDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	k := p.Trust.Keys["inline"]
	if got, ok := k.PublicKey.(ed25519.PublicKey); !ok || !got.Equal(edPub) || k.Path != "" {
		t.Errorf("inline key = %+v", k)
	}
	req := render(t, p, "ghcr.io/a/b:v1")
	if req.Authorities[0].Key.PublicKey.(ed25519.PublicKey).Equal(edPub) != true {
		t.Error("rendered key authority does not carry the key")
	}
}
