package testenv_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/seal-dev/seal/internal/testenv"
)

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func parse(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistriesAcceptPush(t *testing.T) {
	regs := append(testenv.Registries(t), testenv.External(t))
	want := map[string]bool{"distribution": false, "ggcr": true, "external": false}
	for _, r := range regs {
		t.Run(r.Name, func(t *testing.T) {
			if !strings.HasPrefix(r.Host, "127.0.0.1:") || strings.HasSuffix(r.Host, ":0") {
				t.Errorf("Host = %q, want 127.0.0.1:PORT", r.Host)
			}
			if r.ReferrersAPI != want[r.Name] {
				t.Errorf("ReferrersAPI = %v, want %v", r.ReferrersAPI, want[r.Name])
			}
			img := randomImage(t)
			ref := parse(t, r.Ref("app:v1"))
			if err := remote.Write(ref, img, r.RemoteOptions(context.Background())...); err != nil {
				t.Fatalf("push: %v", err)
			}
			desc, err := remote.Head(ref, r.RemoteOptions(context.Background())...)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := img.Digest(); desc.Digest != d {
				t.Errorf("app:v1 → %s, want %s", desc.Digest, d)
			}
		})
	}
}

// ReferrersAPI tells the truth: the referrers endpoint answers 200 with an
// index where it is on, 404 where it is not.
func TestReferrersAPIAsAdvertised(t *testing.T) {
	regs := append(testenv.Registries(t), testenv.External(t))
	for _, r := range regs {
		t.Run(r.Name, func(t *testing.T) {
			img := randomImage(t)
			ref := parse(t, r.Ref("app:v1"))
			if err := remote.Write(ref, img, r.RemoteOptions(context.Background())...); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			scheme := "http"
			if r.CACertFile != "" {
				scheme = "https"
			}
			req, err := http.NewRequest(http.MethodGet, scheme+"://"+r.Host+"/v2/app/referrers/"+d.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Username != "" {
				req.SetBasicAuth(r.Username, r.Password)
			}
			resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := http.StatusNotFound
			if r.ReferrersAPI {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("GET referrers = %s %s, want %d", resp.Status, body, want)
			}
			if r.ReferrersAPI && !strings.Contains(string(body), `"manifests"`) {
				t.Errorf("referrers body %s is not an index", body)
			}
		})
	}
}

func TestExternalAuthAndTLS(t *testing.T) {
	r := testenv.External(t)
	if r.Username == "" || r.Password == "" || r.CACertFile == "" || r.DockerConfigDir == "" {
		t.Fatalf("external registry lacks credentials, CA or Docker config")
	}
	ctx := context.Background()
	img := randomImage(t)
	ref := parse(t, r.Ref("private/app:v1"))
	secrets := []string{r.Password, base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
	var errs []error

	var terr *transport.Error
	err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(r.Transport()))
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous push = %v, want 401", err)
	}
	errs = append(errs, err)

	err = remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(r.Transport()),
		remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password + "x"}))
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("push with a wrong password = %v, want 401", err)
	}
	errs = append(errs, err)

	// The system roots do not trust the test CA.
	_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(r.Keychain()))
	if err == nil {
		t.Errorf("HEAD over a transport without the test CA succeeded")
	}
	errs = append(errs, err)

	if err := remote.Write(ref, img, r.RemoteOptions(ctx)...); err != nil {
		t.Fatalf("push with the Docker config credentials: %v", err)
	}
	// An authenticated request that fails still must not echo credentials.
	_, err = remote.Get(parse(t, r.Ref("private/app:missing")), r.RemoteOptions(ctx)...)
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a missing tag = %v, want 404", err)
	}
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %d contains the registry credentials", i)
			}
		}
	}
}

// The Docker config directory serves other clients too: go-containerregistry's
// default keychain finds the credentials through DOCKER_CONFIG, as cosign does.
func TestExternalDockerConfig(t *testing.T) {
	r := testenv.External(t)
	b, err := os.ReadFile(filepath.Join(r.DockerConfigDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"`+r.Host+`"`) {
		t.Errorf("config.json has no entry for %s", r.Host)
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", r.DockerConfigDir)
	ref := parse(t, r.Ref("app:v1"))
	if err := remote.Write(ref, randomImage(t), remote.WithTransport(r.Transport()), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		t.Fatalf("push with authn.DefaultKeychain and DOCKER_CONFIG: %v", err)
	}
}

func TestInProcessRegistriesAreAnonymous(t *testing.T) {
	for _, r := range testenv.Registries(t) {
		a, err := r.Keychain().Resolve(parse(t, r.Ref("app:v1")).Context())
		if err != nil {
			t.Fatal(err)
		}
		if a != authn.Anonymous {
			t.Errorf("%s: keychain resolves to %T, want anonymous", r.Name, a)
		}
		if r.Username != "" || r.Password != "" || r.CACertFile != "" || r.DockerConfigDir != "" {
			t.Errorf("%s: unexpected credentials or TLS material", r.Name)
		}
	}
}
