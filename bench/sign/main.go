// Command sign compares one `seal sign --key` call over a release of n
// images with a loop of `cosign sign --key` over the same images, on the
// same registry, both writing Sigstore bundle referrers.
//
//	go run ./bench/sign [-n 100] [-registry fallback|api] [-seal-runs 3] [-modes index[,recursive]]
//
// Setup (not timed): one in-process registry on 127.0.0.1 behind a counting
// reverse proxy; for each tool and mode, n two-platform images (BuildKit's
// linux/amd64 and linux/arm64 pushes from internal/buildkit, merged by
// index.Create) in repositories of their own — the same n images (same
// digests) for every tool, so that each tool signs untouched images; one
// key pair in cosign's format, read by both tools.
//
// Measured, every tool as its own process (seal built from this tree, the
// pinned cosign v3.1.3), each image by digest: `seal sign --key K IMAGE…`
// once (the median of -seal-runs runs, each on fresh images), against `cosign sign --key K --tlog-upload=false --yes IMAGE` once
// per image; in mode "index" the index is signed, in mode "recursive"
// (--recursive for both tools) the index and both platform manifests. Then
// every manifest that should be signed is checked to have a bundle
// referrer by the tool.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/seal-dev/seal/bench/internal/benchenv"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/signing"
)

const password = "bench-password"

func main() {
	n := flag.Int("n", 100, "images in the release")
	kind := flag.String("registry", string(benchenv.Fallback), "registry kind: fallback (CNCF Distribution, no referrers API) or api (go-containerregistry's, referrers API)")
	sealRuns := flag.Int("seal-runs", 3, "runs of seal sign, each on fresh images (median shown); the cosign loop runs once")
	modes := flag.String("modes", "index", "comma-separated: index (sign the index) and/or recursive (the index and its platform manifests; cosign takes ~3.5 s per image there)")
	flag.Parse()
	log.SetFlags(0)
	if *n < 1 || *sealRuns < 1 || (*kind != string(benchenv.Fallback) && *kind != string(benchenv.API)) {
		log.Fatal("bench/sign: bad flags")
	}
	var ms []string
	for _, m := range strings.Split(*modes, ",") {
		if m != "index" && m != "recursive" {
			log.Fatalf("bench/sign: unknown mode %q", m)
		}
		ms = append(ms, m)
	}
	if err := bench(*n, benchenv.Kind(*kind), ms, *sealRuns); err != nil {
		log.Fatalf("bench/sign: %v", err)
	}
}

type row struct {
	tool      string
	log       []benchenv.Request
	took      time.Duration
	requests  int64
	bytes     int64
	processes int
}

func bench(n int, kind benchenv.Kind, modes []string, sealRuns int) error {
	ctx := context.Background()
	ws, err := benchenv.Setup("sign", "cosign")
	if err != nil {
		return err
	}
	defer ws.Close()
	tmp, seal, home := ws.Dir, ws.Seal, ws.Home
	cosign := ws.Tools["cosign"]
	priv, _, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		return err
	}
	keyPath := filepath.Join(tmp, "release.key")
	if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
		return err
	}

	reg, stop, err := benchenv.StartRegistry(kind)
	if err != nil {
		return err
	}
	defer stop()
	proxy, err := benchenv.NewProxy(reg)
	if err != nil {
		return err
	}
	defer proxy.Close()
	c := oci.NewClient()

	type tool struct {
		name string
		runs int
		run  func(images []benchenv.Image, recursive bool) error
	}
	tools := []tool{
		{"seal sign --key, one call", sealRuns, func(images []benchenv.Image, recursive bool) error {
			args := []string{"sign", "--key", keyPath}
			if recursive {
				args = append(args, "--recursive")
			}
			for _, im := range images {
				args = append(args, im.Index.String())
			}
			return run(benchenv.ToolCmd(seal, home, []string{"SEAL_PASSWORD=" + password}, args...))
		}},
		{"cosign sign --key --tlog-upload=false, loop", 1, func(images []benchenv.Image, recursive bool) error {
			for _, im := range images {
				args := []string{"sign", "--key", keyPath, "--use-signing-config=false", "--tlog-upload=false",
					"--yes", "--allow-insecure-registry"}
				if recursive {
					args = append(args, "--recursive")
				}
				if err := run(benchenv.ToolCmd(cosign, home, []string{"COSIGN_PASSWORD=" + password}, append(args, im.Index.String())...)); err != nil {
					return err
				}
			}
			return nil
		}},
	}

	// Every run of every tool and mode gets its own n images, pushed before
	// anything is timed.
	setup := time.Now()
	images := map[string][]benchenv.Image{}
	for _, mode := range modes {
		for ti, tl := range tools {
			for run := range tl.runs {
				key := fmt.Sprint(mode, ti, run)
				if images[key], err = benchenv.PushImages(ctx, c, proxy.Host, fmt.Sprintf("t%d-%s-%d/app%%03d", ti, mode, run), n); err != nil {
					return err
				}
			}
		}
	}
	fmt.Printf("%d two-platform images per tool, run and mode in %s (%s), pushed in %v\n", n, proxy.Host, kind.Name(), time.Since(setup).Round(time.Millisecond))
	fmt.Printf("load average before the runs: %s\n\n", benchenv.LoadAverage())

	for _, mode := range modes {
		recursive := mode == "recursive"
		perImage := 1
		what := "the index of each image"
		if recursive {
			perImage, what = 3, "the index and both platform manifests of each image (--recursive)"
		}
		var rows []row
		var times []string
		for ti, tl := range tools {
			var runs []row
			for run := range tl.runs {
				imgs := images[fmt.Sprint(mode, ti, run)]
				proxy.Reset()
				start := time.Now()
				if err := tl.run(imgs, recursive); err != nil {
					return fmt.Errorf("%s: %w", tl.name, err)
				}
				r := row{tool: tl.name, took: time.Since(start), requests: proxy.Requests(), bytes: proxy.Bytes(), processes: 1, log: proxy.Log()}
				if ti > 0 {
					r.processes = n
				}
				runs = append(runs, r)
				if err := checkSigned(ctx, c, imgs, recursive); err != nil {
					return fmt.Errorf("%s: %w", tl.name, err)
				}
			}
			var ts []string
			for _, r := range runs {
				ts = append(ts, r.took.Round(time.Millisecond).String())
			}
			times = append(times, strings.Join(ts, ", "))
			sort.Slice(runs, func(i, j int) bool { return runs[i].took < runs[j].took })
			rows = append(rows, runs[len(runs)/2])
		}
		fmt.Printf("signing %s: %d signatures per tool and run; seal: median of %d runs (%s); cosign: one run\n",
			what, perImage*n, sealRuns, times[0])
		t := benchenv.NewTable(os.Stdout, "tool", "processes", "total time", "per image", "requests/image", "bytes/image", "x seal time")
		for _, r := range rows {
			t.Row(r.tool, fmt.Sprint(r.processes), r.took.Round(time.Millisecond).String(),
				(r.took / time.Duration(n)).Round(100*time.Microsecond).String(),
				fmt.Sprintf("%.2f", float64(r.requests)/float64(n)), benchenv.KiB(r.bytes/int64(n)),
				fmt.Sprintf("%.1f", r.took.Seconds()/rows[0].took.Seconds()))
		}
		t.Flush()
		for _, r := range rows {
			fmt.Println()
			benchenv.PrintClasses(os.Stdout, r.tool, n, r.log)
		}
		fmt.Println()
	}
	fmt.Printf("load average after the runs: %s\n", benchenv.LoadAverage())
	fmt.Println("bytes/image: request and response bodies through the proxy, divided by the images.")
	return nil
}

// checkSigned checks that every manifest that should have been signed has
// a Sigstore bundle referrer announcing cosign's signature predicate type.
func checkSigned(ctx context.Context, c *oci.Client, images []benchenv.Image, recursive bool) error {
	for _, im := range images {
		subjects := []name.Digest{im.Index}
		if recursive {
			for _, p := range im.Platforms {
				subjects = append(subjects, im.Index.Context().Digest(p.String()))
			}
		}
		for _, s := range subjects {
			refs, err := c.Referrers(ctx, s)
			if err != nil {
				return err
			}
			found := false
			for _, r := range refs {
				if r.ArtifactType != signing.BundleMediaType {
					continue
				}
				// cosign's fallback tag entries carry no annotations: the
				// predicate type is read from the manifest.
				m, err := c.Manifest(ctx, s.Context().Digest(r.Digest.String()))
				if err != nil {
					return err
				}
				var man struct {
					Annotations map[string]string `json:"annotations"`
				}
				if err := json.Unmarshal(m.Raw, &man); err != nil {
					return fmt.Errorf("referrer %s of %s: %w", r.Digest, s, err)
				}
				if man.Annotations[signing.AnnotationPredicateType] == signing.CosignSignPredicate {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("%s has no signature bundle referrer (%d referrers)", s, len(refs))
			}
		}
	}
	return nil
}

func run(cmd interface {
	CombinedOutput() ([]byte, error)
}) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := string(out)
		if len(s) > 4000 {
			s = s[:4000] + "…"
		}
		return fmt.Errorf("%v\n%s", err, s)
	}
	return nil
}
