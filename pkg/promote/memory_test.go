package promote_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/promote"
)

const (
	largeLayer = 1 << 30   // bytes
	memoryCap  = 200 << 20 // the process's peak resident memory during the copy
)

// A 1 GiB layer is copied across registries with the process's peak
// resident memory under 200 MiB.
//
// What is measured: the registries are the Distribution binary run as
// separate processes (testenv.External: filesystem storage, TLS, basic
// auth), so this process holds only the client side of the copy. The layer
// is pushed to the source from a deterministic pseudo-random stream whose
// sha256 is computed on the way (it is never in memory either). The peak is
// the kernel's high-water mark of this process's resident set (VmHWM),
// reset through /proc/self/clear_refs right before the copy, so it counts
// everything the process touched during the copy — heap, stacks, buffers,
// the runtime — not only the Go heap; the Go heap (HeapInuse) is sampled as
// well and reported.
func TestCopyLargeLayerMemory(t *testing.T) {
	srcReg, dstReg := testenv.External(t), testenv.External(t)
	c := oci.NewClient(
		oci.WithTransport(trustBoth(t, srcReg, dstReg)),
		oci.WithKeychain(authn.NewMultiKeychain(srcReg.Keychain(), dstReg.Keychain())),
	)
	ctx := context.Background()

	start := time.Now()
	layer := pushStream(t, srcReg, "big/app", largeLayer, 42)
	pushed := time.Since(start)
	src := parseTag(t, c, srcReg.Ref("big/app:v1"))
	pushImage(t, c, src, layer)

	dst := parseTag(t, c, dstReg.Ref("prime/app:v1"))
	runtime.GC()
	resetPeakRSS(t)
	stop := sampleHeap()
	start = time.Now()
	res, err := promote.Copy(ctx, c, src, dst, promote.Options{})
	took := time.Since(start)
	heapPeak := stop()
	must(t, err)
	peak := peakRSS(t)

	if res.Bytes.Copied < largeLayer || res.Blobs.Copied != 2 {
		t.Fatalf("copied %+v bytes, %+v blobs", res.Bytes, res.Blobs)
	}
	if ok, err := c.HasBlob(ctx, dst.Context(), layer.Digest); err != nil || !ok {
		t.Fatalf("layer at the destination: %v %v", ok, err)
	}
	t.Logf("pushed 1 GiB to the source in %v; copied %d bytes in %v (%.0f MiB/s); peak RSS %.1f MiB, peak Go heap in use %.1f MiB",
		pushed.Round(time.Millisecond), res.Bytes.Copied, took.Round(time.Millisecond),
		float64(res.Bytes.Copied)/(1<<20)/took.Seconds(), float64(peak)/(1<<20), float64(heapPeak)/(1<<20))
	if peak >= memoryCap {
		t.Fatalf("peak RSS during the copy %.1f MiB, want under %d MiB", float64(peak)/(1<<20), memoryCap>>20)
	}
}

// trustBoth is a transport trusting the test CAs of both registries.
func trustBoth(t testing.TB, regs ...*testenv.Registry) http.RoundTripper {
	pool := x509.NewCertPool()
	for _, r := range regs {
		pem, err := os.ReadFile(r.CACertFile)
		must(t, err)
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", r.CACertFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// pushStream uploads size pseudo-random bytes (from seed) as a blob of
// repo in one streamed PATCH, hashing them on the way, and returns the
// blob's descriptor.
func pushStream(t testing.TB, reg *testenv.Registry, repo string, size int64, seed uint64) v1.Descriptor {
	t.Helper()
	hc := &http.Client{Transport: reg.Transport()}
	base := "https://" + reg.Host + "/v2/" + repo + "/blobs/uploads/"
	do := func(method, url string, body io.Reader, length int64) *http.Response {
		req, err := http.NewRequest(method, url, body)
		must(t, err)
		req.SetBasicAuth(reg.Username, reg.Password)
		if body != nil {
			req.ContentLength = length
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		resp, err := hc.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s", method, req.URL.Path, resp.Status)
		}
		return resp
	}
	loc := func(resp *http.Response) string {
		u, err := resp.Location()
		must(t, err)
		return u.String()
	}
	next := loc(do(http.MethodPost, base, nil, 0))
	h := sha256.New()
	data := io.TeeReader(io.LimitReader(newCycle(seed), size), h)
	next = loc(do(http.MethodPatch, next, data, -1))
	d := v1.Descriptor{
		MediaType: types.OCILayer,
		Size:      size,
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))},
	}
	sep := "?"
	if strings.Contains(next, "?") {
		sep = "&"
	}
	do(http.MethodPut, next+sep+"digest="+d.Digest.String(), http.NoBody, 0)
	return d
}

// cycle is an endless deterministic pseudo-random stream: a 1 MiB block
// drawn from ChaCha8(seed), repeated. Repeating keeps generation cheap (the
// copy is what is measured); registries neither compress nor deduplicate
// inside a blob, so every byte still moves.
type cycle struct {
	block []byte
	off   int
}

func newCycle(seed uint64) *cycle {
	var s [32]byte
	copy(s[:], strconv.FormatUint(seed, 10))
	c := &cycle{block: make([]byte, 1<<20)}
	_, _ = rand.NewChaCha8(s).Read(c.block)
	return c
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.block[c.off:])
	c.off = (c.off + n) % len(c.block)
	return n, nil
}

// pushImage pushes an image of one layer (already in the repository) with a
// small config and tags it.
func pushImage(t testing.TB, c *oci.Client, ref name.Tag, layer v1.Descriptor) {
	t.Helper()
	ctx := context.Background()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + layer.Digest.String() + `"]}}`)
	ch, n, err := v1.SHA256(strings.NewReader(string(cfg)))
	must(t, err)
	cd := v1.Descriptor{MediaType: types.OCIConfigJSON, Size: n, Digest: ch}
	must(t, c.PushBlob(ctx, ref.Context(), cd, cfg))
	raw, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: []v1.Descriptor{layer}})
	must(t, err)
	_, err = c.PushManifest(ctx, ref.Context(), raw, string(types.OCIManifestSchema1))
	must(t, err)
	must(t, c.Tag(ctx, ref, raw, string(types.OCIManifestSchema1)))
}

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set to its current size.
func resetPeakRSS(t testing.TB) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
}

// peakRSS is VmHWM of /proc/self/status, in bytes.
func peakRSS(t testing.TB) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	must(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// sampleHeap samples the Go heap in use every 10ms until the returned stop
// is called, which returns the peak.
func sampleHeap() (stop func() uint64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}
