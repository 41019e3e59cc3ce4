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
