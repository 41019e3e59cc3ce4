package signing

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/seal-dev/seal/internal/testenv"
)

// BenchmarkSign100 is one `seal sign --key` call over 100 images (key
// decryption included) against BenchmarkCosignSign100, a loop of `cosign
// sign --key` over the same images on the same kind of registry (ggcr, with
// the referrers API; bundle format for both). Run with
//
//	go test ./pkg/signing -run '^$' -bench 'Sign100' -benchtime 3x
//
// and compare ns/op.
func BenchmarkSign100(b *testing.B) {
	reg := testenv.GGCR(b)
	images := pushImages(b, reg, 100)
	priv, _, err := GenerateKeyPair([]byte(testPassword))
	must(b, err)
	c := client(reg)
	b.ResetTimer()
	for b.Loop() {
		key, err := LoadPrivateKey(priv, []byte(testPassword))
		must(b, err)
		s, err := NewKeySigner(key, Services{})
		must(b, err)
		res, err := Sign(context.Background(), c, images, Options{Signer: s})
		must(b, err)
		if len(res) != 100 {
			b.Fatalf("%d results", len(res))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/100, "ms/image")
}

func BenchmarkCosignSign100(b *testing.B) {
	reg := testenv.GGCR(b)
	images := pushImages(b, reg, 100)
	dir := b.TempDir()
	priv, _, err := GenerateKeyPair([]byte(testPassword))
	must(b, err)
	must(b, os.WriteFile(dir+"/k.key", priv, 0o600))
	bin := testenv.Tool(b, "cosign")
	env := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "COSIGN_PASSWORD=" + testPassword}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for _, img := range images {
			cmd := exec.Command(bin, "sign", "--key", dir+"/k.key", "--use-signing-config=false",
				"--tlog-upload=false", "--yes", "--allow-insecure-registry", img)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("cosign sign: %v\n%s", err, out)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N)/100, "ms/image")
}
