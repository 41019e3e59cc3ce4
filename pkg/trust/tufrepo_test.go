package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// tufRepo is a real TUF repository (consistent snapshots, one ed25519 key
// per role) written to a directory and served over loopback by a plain
// file server, the way a CDN mirror serves the public-good repository.
type tufRepo struct {
	t         *testing.T
	dir       string
	keys      map[string]ed25519.PrivateKey
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	srv       *httptest.Server
	requests  atomic.Int64
}

// newTUFRepo publishes version 1 of every role with trustedRoot as the
// trusted_root.json target, all expiring in a week.
func newTUFRepo(t *testing.T, trustedRoot []byte) *tufRepo {
	t.Helper()
	expires := time.Now().AddDate(0, 0, 7).UTC().Truncate(time.Second)
	r := &tufRepo{
		t:         t,
		dir:       t.TempDir(),
		keys:      map[string]ed25519.PrivateKey{},
		root:      metadata.Root(expires),
		targets:   metadata.Targets(expires),
		snapshot:  metadata.Snapshot(expires),
		timestamp: metadata.Timestamp(expires),
	}
	if err := os.Mkdir(filepath.Join(r.dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r.keys[role] = priv
		key, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	r.addTarget(targetName, trustedRoot)
	r.publishRoot()
	r.publish()
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *tufRepo) URL() string { return r.srv.URL }

// rootJSON is version 1 of root.json, the client's initial trusted root.
func (r *tufRepo) rootJSON() []byte {
	data, err := os.ReadFile(filepath.Join(r.dir, "1.root.json"))
	if err != nil {
		r.t.Fatal(err)
	}
	return data
}

func (r *tufRepo) signer(role string) signature.Signer {
	s, err := signature.LoadSigner(r.keys[role], crypto.Hash(0))
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *tufRepo) addTarget(name string, data []byte) {
	info, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	r.targets.Signed.Targets[name] = info
	r.writeFile(r.targetPath(name), data)
}

func (r *tufRepo) targetPath(name string) string {
	return filepath.Join("targets", hex.EncodeToString(r.targets.Signed.Targets[name].Hashes["sha256"])+"."+name)
}

func (r *tufRepo) publishRoot() {
	r.root.ClearSignatures()
	if _, err := r.root.Sign(r.signer(metadata.ROOT)); err != nil {
		r.t.Fatal(err)
	}
	r.writeMeta(fmt.Sprintf("%d.root.json", r.root.Signed.Version), r.root)
}

// publish signs and writes targets, snapshot and timestamp at their
// current versions, snapshot and timestamp naming the others'.
func (r *tufRepo) publish() {
	r.targets.ClearSignatures()
	if _, err := r.targets.Sign(r.signer(metadata.TARGETS)); err != nil {
		r.t.Fatal(err)
	}
	r.writeMeta(fmt.Sprintf("%d.targets.json", r.targets.Signed.Version), r.targets)
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.snapshot.ClearSignatures()
	if _, err := r.snapshot.Sign(r.signer(metadata.SNAPSHOT)); err != nil {
		r.t.Fatal(err)
	}
	r.writeMeta(fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version), r.snapshot)
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.ClearSignatures()
	if _, err := r.timestamp.Sign(r.signer(metadata.TIMESTAMP)); err != nil {
		r.t.Fatal(err)
	}
	r.writeMeta("timestamp.json", r.timestamp)
}

// release publishes a new version of the target, as the repository's
// maintainers do when Sigstore's keys change.
func (r *tufRepo) release(name string, data []byte) {
	r.addTarget(name, data)
	r.targets.Signed.Version++
	r.snapshot.Signed.Version++
	r.timestamp.Signed.Version++
	r.publish()
}

// expireTimestamp re-signs timestamp.json, at a new version, to expire at.
func (r *tufRepo) expireTimestamp(at time.Time) {
	r.timestamp.Signed.Expires = at.UTC()
	r.timestamp.Signed.Version++
	r.publish()
}

// tamperTarget replaces the served bytes of a target with others of the
// same length, so that only the hash can tell.
func (r *tufRepo) tamperTarget(name string) {
	p := filepath.Join(r.dir, r.targetPath(name))
	data, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	r.writeFile(r.targetPath(name), data)
}

// forgeRoot publishes the next root.json with its root key replaced by one
// the current root never named, signed by that key alone: a rotation that
// did not come from the root's owners.
func (r *tufRepo) forgeRoot() {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	forged := *r.root
	forged.Signed.Version++
	forged.Signed.Keys = map[string]*metadata.Key{}
	forged.Signed.Roles = map[string]*metadata.Role{}
	for role, rl := range r.root.Signed.Roles {
		forged.Signed.Roles[role] = &metadata.Role{KeyIDs: []string{}, Threshold: rl.Threshold}
	}
	for role, k := range r.keys {
		if role == metadata.ROOT {
			k = priv
		}
		key, err := metadata.KeyFromPublicKey(k.Public())
		if err != nil {
			r.t.Fatal(err)
		}
		if err := forged.Signed.AddKey(key, role); err != nil {
			r.t.Fatal(err)
		}
	}
	forged.Signatures = nil
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := forged.Sign(s); err != nil {
		r.t.Fatal(err)
	}
	r.writeMeta(fmt.Sprintf("%d.root.json", forged.Signed.Version), &forged)
}

func (r *tufRepo) writeMeta(name string, m interface{ ToBytes(bool) ([]byte, error) }) {
	data, err := m.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.writeFile(name, data)
}

func (r *tufRepo) writeFile(name string, data []byte) {
	if err := os.WriteFile(filepath.Join(r.dir, name), data, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// trustedRootWithExtraCA returns base's trusted root plus a new,
// self-signed Fulcio CA, and that CA's certificate.
func trustedRootWithExtraCA(t *testing.T, base *root.TrustedRoot) ([]byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "seal-test rotated fulcio"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cas := append(base.FulcioCertificateAuthorities(), &root.FulcioCertificateAuthority{
		Root: cert, ValidityPeriodStart: cert.NotBefore, URI: "https://fulcio.rotated.invalid",
	})
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, base.CTLogs(), base.TimestampingAuthorities(), base.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data, cert
}
