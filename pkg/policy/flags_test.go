package policy

import (
	"crypto/ecdsa"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seal-dev/seal/pkg/fault"
)

func TestFromFlags(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cosign.pub")
	writePublicKey(t, keyPath)

	p, err := FromFlags(Flags{Key: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	req := render(t, p, "nginx@"+testDigest)
	if len(req.Authorities) != 1 || req.Authorities[0].Key == nil || req.Threshold != 1 {
		t.Fatalf("key policy renders %+v", req)
	}
	if _, ok := req.Authorities[0].Key.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key %T", req.Authorities[0].Key.PublicKey)
	}

	// Identity flags are literal: a regexp with braces is not a template.
	p, err = FromFlags(Flags{Issuer: "https://token.actions.githubusercontent.com", SubjectRegExp: `^https://github\.com/example/[a-z]{2,}/`, TrustedRoot: "root.json"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Trust.TrustedRoot != "root.json" {
		t.Errorf("trusted root %q", p.Trust.TrustedRoot)
	}
	req = render(t, p, "ghcr.io/example/app@"+testDigest)
	k := req.Authorities[0].Keyless
	if ok, why := k.Matches(githubSummary("example/app", "v1")); !ok {
		t.Errorf("identity does not match: %s", why)
	}
	if ok, _ := k.Matches(githubSummary("example/x", "v1")); ok {
		t.Error("{2,} was not applied")
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "not anchored") {
		t.Errorf("warnings %v", p.Warnings)
	}

	for _, bad := range []Flags{
		{},
		{Key: keyPath, Issuer: "x", Subject: "y"},
		{Issuer: "x"},
		{Issuer: "x", IssuerRegExp: "y", Subject: "z"},
		{Issuer: "x", SubjectRegExp: "("},
		{Key: filepath.Join(dir, "missing.pub")},
	} {
		if _, err := FromFlags(bad); err == nil || fault.KindOf(err) != fault.Input {
			t.Errorf("FromFlags(%+v) = %v, want an input error", bad, err)
		}
	}
}
