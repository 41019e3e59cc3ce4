package oci_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/seal-dev/seal/internal/testenv"
	"github.com/seal-dev/seal/pkg/oci"
)

// A batch over many repositories of one registry pings it once, not once per
// repository (and, for a plain-HTTP registry, not twice per repository).
func TestOnePingPerRegistry(t *testing.T) {
	ctx := testCtx(t)
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			proxy := testenv.NewFaultProxy(t, "http://"+r.Host)
			c := oci.NewClient()
			data := []byte("one blob, many repositories")
			d := blobDesc("application/octet-stream", data)
			for i := range 10 {
				repo := repoOf(t, c, fmt.Sprintf("%s/app%d", proxy.Host(), i))
				if err := c.PushBlob(ctx, repo, d, data); err != nil {
					t.Fatal(err)
				}
				if ok, err := c.HasBlob(ctx, repo, d.Digest); err != nil || !ok {
					t.Fatalf("blob in %s: %v %v", repo, ok, err)
				}
			}
			if n := proxy.Count("GET", "ping"); n != 1 {
				t.Errorf("%d pings for 10 repositories, want 1 (counts %v)", n, proxy.Counts())
			}
		})
	}
}

// The registry's challenge is remembered too: with basic auth, every
// repository still authenticates (and a wrong password still fails).
func TestPingCacheKeepsAuth(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.External(t)
	c := clientFor(r)
	data := []byte("authenticated")
	d := blobDesc("application/octet-stream", data)
	for i := range 3 {
		repo := repoOf(t, c, fmt.Sprintf("%s/app%d", r.Host, i))
		if err := c.PushBlob(ctx, repo, d, data); err != nil {
			t.Fatalf("push to %s after the first ping was cached: %v", repo, err)
		}
	}
}

// Workers that start together wait for the first ping instead of each sending one.
func TestConcurrentPingsShareOne(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.Distribution(t)
	proxy := testenv.NewFaultProxy(t, "http://"+r.Host)
	c := oci.NewClient()
	data := []byte("together")
	d := blobDesc("application/octet-stream", data)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := repoOf(t, c, fmt.Sprintf("%s/w%d", proxy.Host(), i))
			if err := c.PushBlob(ctx, repo, d, data); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := proxy.Count("GET", "ping"); n != 1 {
		t.Errorf("%d pings from 16 workers, want 1", n)
	}
}

// Workers that start together on a registry whose referrers API is not yet
// known ask about it once: on a registry without the API every other worker
// goes straight to the fallback tag; on one with it, each worker's request is
// its own subject's answer, never a repeated probe.
func TestConcurrentReferrersShareOneProbe(t *testing.T) {
	ctx := testCtx(t)
	for _, r := range testenv.Registries(t) {
		t.Run(r.Name, func(t *testing.T) {
			proxy := testenv.NewFaultProxy(t, "http://"+r.Host)
			setup := oci.NewClient()
			const workers = 16
			for i := range workers {
				// A manifest, so that the repository exists on every kind.
				repo := repoOf(t, setup, fmt.Sprintf("%s/probe%d", proxy.Host(), i))
				raw := pushArtifact(t, ctx, setup, repo, blobDesc(emptyJSON, []byte("{}")), "application/vnd.seal.test", "probe")
				if _, err := setup.PushManifest(ctx, repo, raw, ociManifest); err != nil {
					t.Fatal(err)
				}
			}
			proxy.ResetCounts()
			c := oci.NewClient()
			var wg sync.WaitGroup
			for i := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					repo := repoOf(t, c, fmt.Sprintf("%s/probe%d", proxy.Host(), i))
					refs, err := c.Referrers(ctx, digestRef(t, c, repo, sha([]byte(fmt.Sprint("subject ", i)))))
					if err != nil || len(refs) != 0 {
						t.Errorf("referrers in %s: %v, %v", repo, refs, err)
					}
				}()
			}
			wg.Wait()
			want := 1
			if r.ReferrersAPI {
				want = workers
			}
			if n := proxy.Count("GET", "referrers"); n != want {
				t.Errorf("%d referrers requests from %d workers, want %d (counts %v)", n, workers, want, proxy.Counts())
			}
			if api, err := c.ReferrersAPI(ctx, repoOf(t, c, proxy.Host()+"/probe0")); err != nil || api != r.ReferrersAPI {
				t.Errorf("ReferrersAPI = %v, %v; want %v", api, err, r.ReferrersAPI)
			}
		})
	}
}
