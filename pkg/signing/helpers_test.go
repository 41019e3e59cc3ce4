package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/oci"
)

func client(r *testenv.Registry, opts ...oci.Option) *oci.Client {
	return oci.NewClient(append([]oci.Option{oci.WithTransport(r.Transport()), oci.WithKeychain(r.Keychain())}, opts...)...)
}

// pushRandom pushes a small random image to repo:tag and returns it by digest.
func pushRandom(t testing.TB, r *testenv.Registry, repoTag string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	must(t, err)
	ref, err := name.ParseReference(r.Ref(repoTag))
	must(t, err)
	must(t, remote.Write(ref, img, r.RemoteOptions(context.Background())...))
	h, err := img.Digest()
	must(t, err)
	return ref.Context().Digest(h.String())
}

// keyFiles is a seal key pair on disk (for cosign) and its signer.
type keyFiles struct {
	dir, key, pub string
	signer        *KeySigner
}

// newKeyFiles writes the shared seal key pair (see testKey) to a temp dir.
func newKeyFiles(t *testing.T) keyFiles {
	t.Helper()
	dir := t.TempDir()
	priv, pub := testKey(t)
	k := keyFiles{dir: dir, key: filepath.Join(dir, "seal.key"), pub: filepath.Join(dir, "seal.pub")}
	must(t, os.WriteFile(k.key, priv, 0o600))
	must(t, os.WriteFile(k.pub, pub, 0o644))
	var err error
	k.signer, err = NewKeySigner(sharedKey.key, Services{})
	must(t, err)
	return k
}

// quickKeyFiles is a fresh key whose public half is on disk (for cosign
// verify); there is no private key file.
func quickKeyFiles(t *testing.T) keyFiles {
	t.Helper()
	dir := t.TempDir()
	k := keyFiles{dir: dir, pub: filepath.Join(dir, "quick.pub"), signer: quickSigner(t)}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.signer.PublicKey())
	must(t, err)
	must(t, os.WriteFile(k.pub, pub, 0o644))
	return k
}

// quickSigner is a key signer over a fresh in-memory key (no file, no
// scrypt): for tests that need many distinct signers.
func quickSigner(t testing.TB) *KeySigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	s, err := NewKeySigner(k, Services{})
	must(t, err)
	return s
}

func fetchManifest(t testing.TB, c *oci.Client, ref string) *oci.Manifest {
	t.Helper()
	r, err := name.ParseReference(ref)
	must(t, err)
	m, err := c.Manifest(context.Background(), r)
	must(t, err)
	return m
}

func fetchBlob(t testing.TB, c *oci.Client, repo name.Repository, d v1.Descriptor) []byte {
	t.Helper()
	b, err := c.BlobBytes(context.Background(), repo, d, 16<<20)
	must(t, err)
	return b
}

// shape lists every key path of a JSON document ("config.mediaType",
// "layers[].digest", "annotations.dev.sigstore.bundle.content"), so that two
// documents can be compared for structure regardless of values.
func shape(t testing.TB, raw []byte) []string {
	t.Helper()
	var v any
	must(t, json.Unmarshal(raw, &v))
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				set[p] = true
				walk(p, e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[]", e)
			}
		}
	}
	walk("", v)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// field extracts a value by a path of keys from a JSON document.
func field(t testing.TB, raw []byte, path ...any) any {
	t.Helper()
	var v any
	must(t, json.Unmarshal(raw, &v))
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func hashOf(t testing.TB, d name.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.DigestStr())
	must(t, err)
	return h
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return b
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
