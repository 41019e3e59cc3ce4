package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/attestation"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

const testPassword = "attest-test-password-7c1e"

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func client(r *testenv.Registry) *oci.Client {
	return oci.NewClient(oci.WithTransport(r.Transport()), oci.WithKeychain(r.Keychain()))
}

// keys is a key pair: a signer for seal and its public key on disk for
// cosign verify-attestation; key is a cosign-format private key file of
// another pair (pub2), for cosign attest. Made once for the test binary.
type keys struct {
	dir, pub  string
	signer    signing.Signer
	key, pub2 string
	priv      []byte // key's encrypted PEM, for the secret scan
}

var (
	keysOnce sync.Once
	shared   keys
	keysErr  error
)

func testKeys(t testing.TB) keys {
	t.Helper()
	keysOnce.Do(func() { shared, keysErr = makeKeys() })
	must(t, keysErr)
	return shared
}

func makeKeys() (keys, error) {
	dir, err := os.MkdirTemp("", "seal-attest-keys-")
	if err != nil {
		return keys{}, err
	}
	k := keys{dir: dir, pub: filepath.Join(dir, "seal.pub"), key: filepath.Join(dir, "cosign.key"), pub2: filepath.Join(dir, "cosign.pub")}
	// An in-memory key: decrypting a cosign key file takes seconds of scrypt.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return k, err
	}
	if k.signer, err = signing.NewKeySigner(ec, signing.Services{}); err != nil {
		return k, err
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(ec.Public())
	if err != nil {
		return k, err
	}
	if err := os.WriteFile(k.pub, pub, 0o644); err != nil {
		return k, err
	}
	priv, pub2, err := signing.GenerateKeyPair([]byte(testPassword))
	if err != nil {
		return k, err
	}
	k.priv = priv
	if err := os.WriteFile(k.key, priv, 0o600); err != nil {
		return k, err
	}
	return k, os.WriteFile(k.pub2, pub2, 0o644)
}

// outputs collects everything the tests print or return, scanned for the
// key material by TestMain.
var (
	outMu   sync.Mutex
	outputs [][]byte
)

func record(b []byte) {
	outMu.Lock()
	defer outMu.Unlock()
	outputs = append(outputs, bytes.Clone(b))
}

func recordErr(err error) {
	if err != nil {
		record([]byte(err.Error()))
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.priv != nil {
		var needles []string
		needles = append(needles, testPassword)
		for _, line := range strings.Split(string(shared.priv), "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				needles = append(needles, line)
			}
		}
		outMu.Lock()
		for i, o := range outputs {
			for j, n := range needles {
				if bytes.Contains(o, []byte(n)) {
					fmt.Fprintf(os.Stderr, "LEAK: output %d contains secret %d\n", i, j)
					code = 1
				}
			}
		}
		outMu.Unlock()
		os.RemoveAll(shared.dir)
	}
	testenv.StopSharedSigstore()
	os.Exit(code)
}

// cosign runs the pinned cosign with a private HOME.
func cosign(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "cosign"), args...)
	home := t.TempDir()
	cmd.Dir = home
	cmd.Env = append([]string{"HOME=" + home, "TUF_ROOT=" + home + "/.sigstore", "PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	record(out)
	return string(out), err
}

// verifyAttestation runs `cosign verify-attestation --key` on ref for the
// predicate type short name typ and returns the statements cosign printed
// (decoded from the envelopes' payloads).
func verifyAttestation(t *testing.T, pub, typ, ref string, legacy bool) ([]attestation.Statement, error) {
	t.Helper()
	args := []string{"verify-attestation", "--key", pub, "--type", typ, "--insecure-ignore-tlog=true", "--allow-insecure-registry"}
	if legacy {
		args = append(args, "--new-bundle-format=false")
	}
	out, err := cosign(t, nil, append(args, ref)...)
	if err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	var sts []attestation.Statement
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		p, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			return nil, err
		}
		st, err := attestation.ParseStatement(p)
		if err != nil {
			return nil, err
		}
		sts = append(sts, *st)
	}
	if len(sts) == 0 {
		return nil, fmt.Errorf("cosign printed no attestation:\n%s", out)
	}
	return sts, nil
}

// release pushes the per-platform fixtures to repo and merges them with
// index.Create into repo:tag, as `seal index create` does. It returns the
// index by digest and the platform manifest digests by platform.
func release(t *testing.T, reg *testenv.Registry, repo, tag string, fixtures ...string) (name.Digest, map[string]v1.Hash) {
	t.Helper()
	ctx := context.Background()
	c := client(reg)
	var sources []name.Reference
	for _, d := range reg.PushRelease(t, repo, fixtures...) {
		sources = append(sources, d)
	}
	target, err := name.NewTag(reg.Ref(repo + ":" + tag))
	must(t, err)
	created, err := index.Create(ctx, c, target, sources, index.CreateOptions{})
	must(t, err)
	platforms := map[string]v1.Hash{}
	for _, e := range created.Manifests {
		if e.Kind == index.KindImage {
			platforms[e.Platform] = e.Digest
		}
	}
	return target.Context().Digest(created.Digest.String()), platforms
}

// fixtureStatement is the in-toto statement a fixture's attestation
// manifest holds (its single provenance layer).
func fixtureStatement(t *testing.T, fixture string) *attestation.Statement {
	t.Helper()
	st, _ := fixtureStatementBlob(t, fixture)
	return st
}

// fixtureStatementBlob also returns the statement blob's digest.
func fixtureStatementBlob(t *testing.T, fixture string) (*attestation.Statement, v1.Hash) {
	t.Helper()
	dir := testenv.Fixture(t, fixture)
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	must(t, err)
	for _, b := range blobs {
		raw, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", b.Name()))
		must(t, err)
		if !bytes.Contains(raw, []byte(`"predicateType"`)) || !bytes.Contains(raw, []byte(`"_type"`)) {
			continue
		}
		if st, err := attestation.ParseStatement(raw); err == nil {
			return st, v1.Hash{Algorithm: "sha256", Hex: b.Name()}
		}
	}
	t.Fatalf("fixture %s holds no statement", fixture)
	return nil, v1.Hash{}
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	must(t, json.Unmarshal(a, &x))
	must(t, json.Unmarshal(b, &y))
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// attachedState lists everything attached to each of ds (referrers,
// legacy tags), to check that a failed run pushed nothing.
func attachedState(t testing.TB, c *oci.Client, ds ...name.Digest) string {
	t.Helper()
	var b strings.Builder
	for _, d := range ds {
		att, err := c.Attached(context.Background(), d)
		must(t, err)
		fmt.Fprintf(&b, "%s:", d.DigestStr())
		for _, r := range att.Referrers {
			fmt.Fprintf(&b, " %s", r.Digest)
		}
		for _, l := range att.Legacy {
			fmt.Fprintf(&b, " %s=%s", l.Tag.TagStr(), l.Descriptor.Digest)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// platformImage pushes the image manifest of a generated BuildKit build for
// platform p (without its index) to repo and returns its descriptor.
func platformImage(t *testing.T, reg *testenv.Registry, repo string, p v1.Platform) v1.Descriptor {
	t.Helper()
	b, err := buildkit.Build(buildkit.Options{Component: "example/handmade", Platform: p})
	must(t, err)
	img, err := b.Index().Image(b.PlatformDigest())
	must(t, err)
	ref, err := name.NewDigest(reg.Ref(repo) + "@" + b.PlatformDigest().String())
	must(t, err)
	must(t, remote.Write(ref, img, reg.RemoteOptions(context.Background())...))
	raw, err := img.RawManifest()
	must(t, err)
	mt, err := img.MediaType()
	must(t, err)
	return v1.Descriptor{MediaType: mt, Digest: b.PlatformDigest(), Size: int64(len(raw)), Platform: &p}
}

// pushBuildKitIndex pushes, as BuildKit does (OCI artifact layout), an
// index holding the platform manifest and an attestation manifest whose
// layers are statements, tags it repo:tag and returns it by digest.
func pushBuildKitIndex(t *testing.T, reg *testenv.Registry, repo, tag string, platform v1.Descriptor, statements ...[]byte) name.Digest {
	t.Helper()
	ctx := context.Background()
	c := client(reg)
	r, err := name.NewRepository(reg.Ref(repo))
	must(t, err)
	emptyCfg := []byte("{}")
	cfg := v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Size: 2, Digest: sha(emptyCfg)}
	must(t, c.PushBlob(ctx, r, cfg, emptyCfg))
	var layers []v1.Descriptor
	for _, st := range statements {
		parsed, err := attestation.ParseStatement(st)
		must(t, err)
		d := v1.Descriptor{MediaType: attestation.InTotoMediaType, Size: int64(len(st)), Digest: sha(st),
			Annotations: map[string]string{attestation.PredicateTypeAnnotation: parsed.PredicateType}}
		must(t, c.PushBlob(ctx, r, d, st))
		layers = append(layers, d)
	}
	subj := v1.Descriptor{MediaType: platform.MediaType, Digest: platform.Digest, Size: platform.Size}
	att, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		ArtifactType: attestation.BuildKitAttestationArtifact, Config: cfg, Layers: layers, Subject: &subj})
	must(t, err)
	attDesc, err := c.PushManifest(ctx, r, att, string(types.OCIManifestSchema1))
	must(t, err)
	attDesc.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	attDesc.Annotations = map[string]string{
		attestation.DockerReferenceTypeAnnotation:   attestation.DockerReferenceTypeAttestation,
		attestation.DockerReferenceDigestAnnotation: platform.Digest.String(),
	}
	idx, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex,
		Manifests: []v1.Descriptor{platform, attDesc}})
	must(t, err)
	must(t, c.Tag(ctx, r.Tag(tag), idx, string(types.OCIImageIndex)))
	return r.Digest(sha(idx).String())
}

func sha(b []byte) v1.Hash {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	return h
}

// withSubject returns statement with its subject replaced by one about d.
func withSubject(t testing.TB, statement []byte, d v1.Hash) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	must(t, json.Unmarshal(statement, &m))
	s, err := json.Marshal([]attestation.Subject{{Name: "pkg:docker/example/handmade", Digest: map[string]string{d.Algorithm: d.Hex}}})
	must(t, err)
	m["subject"] = s
	out, err := json.Marshal(m)
	must(t, err)
	return out
}

// pushV02Release pushes a single-platform BuildKit index whose provenance
// is SLSA v0.2 (the statement of pkg/attestation's testdata, about the
// pushed platform manifest). It returns the index, the platform manifest's
// digest and the v0.2 predicate.
func pushV02Release(t *testing.T, reg *testenv.Registry, repo string) (name.Digest, v1.Hash, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "attestation", "testdata", "buildkit-v0.2-statement.json"))
	must(t, err)
	p := platformImage(t, reg, repo, v1.Platform{OS: "linux", Architecture: "amd64"})
	st := withSubject(t, raw, p.Digest)
	parsed, err := attestation.ParseStatement(st)
	must(t, err)
	return pushBuildKitIndex(t, reg, repo, "v0.2", p, st), p.Digest, parsed.Predicate
}
