package oci_test

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
	"github.com/seal-dev/seal/pkg/oci"
)

// FuzzParseReference: errors are input errors; an accepted reference prints
// as a string that parses back to the same reference, a digest reference
// names a valid digest, and loopback hosts and those named insecure are
// reached over plain HTTP.
func FuzzParseReference(f *testing.F) {
	hex := strings.Repeat("a", 64)
	for _, s := range []string{
		"127.0.0.1:5000/a:b", "localhost:5000/a/b/c@sha256:" + hex, "[::1]:5000/a:b",
		"registry.internal:5000/a:b", "plain.example/a@sha256:" + hex, "ghcr.io/seal-dev/seal:v1",
		"ghcr.io/seal-dev/seal:v1@sha256:" + hex, "busybox", "docker.io/library/busybox:latest",
		"index.docker.io/x", "127.0.0.1:1/sha256-" + hex + ".sig", "UPPER/case:x", "a/b@sha256:short",
		"host/repo:tag:tag", "10.0.0.1:5000/a:b", "::1/x", "127.1/x", "0x7f.1/x", "localhost./x",
	} {
		f.Add(s)
	}
	insecure := []string{"registry.internal:5000", "plain.example"}
	c := oci.NewClient(oci.WithInsecure(insecure...))
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := c.ParseReference(s)
		if err != nil {
			if k := fault.KindOf(err); k != fault.Input {
				t.Fatalf("ParseReference(%q): error of kind %v, want input: %v", s, k, err)
			}
			return
		}
		again, err := c.ParseReference(ref.String())
		if err != nil {
			t.Fatalf("%q parsed as %q, which does not parse: %v", s, ref.String(), err)
		}
		if again.String() != ref.String() || again.Name() != ref.Name() || again.Context().Scheme() != ref.Context().Scheme() {
			t.Fatalf("%q → %q (%s) → %q (%s)", s, ref, ref.Context().Scheme(), again, again.Context().Scheme())
		}
		if d, ok := ref.(name.Digest); ok {
			if _, err := v1.NewHash(d.DigestStr()); err != nil {
				t.Fatalf("%q: digest %q: %v", s, d.DigestStr(), err)
			}
		}
		host := ref.Context().RegistryStr()
		hostname := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			hostname = h
		}
		hostname = strings.ToLower(strings.Trim(hostname, "[]"))
		ip := net.ParseIP(hostname)
		plain := hostname == "localhost" || (ip != nil && ip.IsLoopback())
		for _, h := range insecure {
			plain = plain || strings.EqualFold(h, host) || strings.EqualFold(h, hostname)
		}
		// Only one way: go-containerregistry's Scheme() also says http for
		// RFC 1918 addresses, which the client's transport refuses
		// (TestPlainHTTPOnlyWhereAllowed).
		if plain && ref.Context().Scheme() != "http" {
			t.Fatalf("%q: loopback or insecure registry %s reached over %s", s, host, ref.Context().Scheme())
		}
	})
}
