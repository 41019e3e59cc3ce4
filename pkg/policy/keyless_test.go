package policy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
)

func TestPolicyKeyless(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(edPub)
	key := "      pem: |\n        " + strings.ReplaceAll(strings.TrimSpace(pemBlock("PUBLIC KEY", der)), "\n", "\n        ") + "\n"
	cases := []struct {
		name string
		yaml string
		want bool
	}{
		{"keys only", `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release:
` + key + `rules:
  - name: r
    images: ["example.com/**"]
    signatures:
      authorities: [{key: release}]
`, false},
		{"keyless signature", `apiVersion: seal.dev/v1alpha1
kind: Policy
rules:
  - name: r
    images: ["example.com/**"]
    signatures:
      authorities:
        - keyless: {issuer: https://token.actions.githubusercontent.com, subject: x}
`, true},
		{"keyless attestation only", `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release:
` + key + `rules:
  - name: r
    images: ["example.com/**"]
    signatures:
      authorities: [{key: release}]
    attestations:
      - predicateType: slsaprovenance1
        authorities:
          - keyless: {issuer: https://token.actions.githubusercontent.com, subject: x}
`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Keyless(); got != tc.want {
				t.Fatalf("Keyless() = %v, want %v", got, tc.want)
			}
		})
	}
}
