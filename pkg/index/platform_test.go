package index

import (
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in      string
		want    v1.Platform
		wantErr bool
	}{
		{in: "linux/amd64", want: v1.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm64/v8", want: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "linux/arm/v7", want: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "windows/amd64:10.0.17763.6293", want: v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.6293"}},
		{in: "", wantErr: true},
		{in: "linux", wantErr: true},
		{in: "linux/", wantErr: true},
		{in: "/amd64", wantErr: true},
		{in: "linux//v7", wantErr: true},
		{in: "linux/arm/v7/x", wantErr: true},
		{in: "linux/amd64:", wantErr: true},
		{in: " linux/amd64", wantErr: true},
		{in: "linux/amd 64", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePlatform(tt.in)
			if tt.wantErr {
				wantInput(t, err, tt.in)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equals(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if s := FormatPlatform(&got); s != tt.in {
				t.Errorf("FormatPlatform = %q, want %q", s, tt.in)
			}
		})
	}
	if s := FormatPlatform(nil); s != "unknown/unknown" {
		t.Errorf("FormatPlatform(nil) = %q", s)
	}
}

func TestAttestationHelpers(t *testing.T) {
	for fx, f := range fixtures {
		t.Run(fx, func(t *testing.T) {
			s := newStore(t, fx)
			raw, err := s.read(hash(t, f.index))
			if err != nil {
				t.Fatal(err)
			}
			var idx v1.IndexManifest
			if err := json.Unmarshal(raw, &idx); err != nil {
				t.Fatal(err)
			}
			for _, d := range idx.Manifests {
				subj, ok := AttestationSubject(d)
				switch d.Digest.Hex {
				case f.image:
					if IsAttestation(d) || ok {
						t.Errorf("image %s taken for an attestation", d.Digest)
					}
				case f.att:
					if !IsAttestation(d) || !ok || subj.Hex != f.image {
						t.Errorf("attestation %s: IsAttestation %v, subject %v %v", d.Digest, IsAttestation(d), subj, ok)
					}
				default:
					t.Errorf("unexpected child %s", d.Digest)
				}
			}
		})
	}
	bad := v1.Descriptor{Annotations: map[string]string{AnnotationReferenceType: ReferenceTypeAttestation, AnnotationReferenceDigest: "sha256:abc"}}
	if _, ok := AttestationSubject(bad); ok || !IsAttestation(bad) {
		t.Errorf("malformed subject digest accepted")
	}
}
