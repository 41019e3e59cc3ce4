// Package demo runs seal's whole release flow on two embedded registries,
// with nothing else: the per-platform pushes a BuildKit CI job makes (with
// provenance), `index create`, `sign --recursive`, `attest --from-buildkit`,
// `copy` to a second ("prime") registry behind the policy gate, and `verify`
// at prime with a policy whose exception covers an agent image built by its
// server's repository. It uses only the pkg/ APIs, so it is also their
// example; the CLI's `seal demo` renders what it reports.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/seal-dev/seal/internal/buildkit"
	"github.com/seal-dev/seal/internal/registry"
	"github.com/seal-dev/seal/pkg/attest"
	"github.com/seal-dev/seal/pkg/index"
	"github.com/seal-dev/seal/pkg/oci"
	"github.com/seal-dev/seal/pkg/policy"
	"github.com/seal-dev/seal/pkg/promote"
	"github.com/seal-dev/seal/pkg/signing"
	"github.com/seal-dev/seal/pkg/verify"
)

// Version is the release the demo builds.
const Version = "v1.0.0"

// component is one image of the release and the repository that builds it.
type component struct {
	name   string // repository path under the registry, e.g. example/server
	source string // the source repository its provenance names
}

var (
	release = []component{
		{"example/server", "https://github.com/example/server"},
		// Built by the server repository's release workflow: the policy
		// needs an exception for it, which the report shows.
		{"example/server-agent", "https://github.com/example/server"},
	}
	// rogue is pushed to staging like a release image but never signed: the
	// policy gate must stop it.
	rogue     = component{"example/server-debug", "https://github.com/example/server"}
	platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
)

// Options configure Run.
type Options struct {
	// Dir holds the demo's files (keys, policy); registries keep their
	// content in memory. Required.
	Dir string
	// Step is told what each step did, one line each; nil to be quiet.
	Step func(line string)
	// Now is the clock the policy's exception is judged by (time.Now when nil).
	Now func() time.Time
}

// Row is one image of the verdict table.
type Row struct {
	Image        string   `json:"image"`
	Digest       string   `json:"digest"`
	Platforms    []string `json:"platforms"`
	Signatures   int      `json:"signatures"`
	Attestations int      `json:"attestations"`
	Rule         string   `json:"rule"`
	Exception    string   `json:"exception"`
	Passed       bool     `json:"passed"`
	Reason       string   `json:"reason,omitempty"`
}

// Report is the outcome: the release at prime, and the image the policy stopped.
type Report struct {
	Rows     []Row `json:"rows"`
	Rejected Row   `json:"rejected"`
	// Passed: every release image passed at prime and the rogue image was stopped.
	Passed bool `json:"passed"`
}

// Demo is a finished run whose registries are still up, for exploring.
type Demo struct {
	Staging, Prime *registry.Server
	Dir            string
	PublicKey      string // path of the release public key
	Policy         string // path of the policy file
	Report         *Report
}

// Close stops the registries.
func (d *Demo) Close(ctx context.Context) error {
	return errors.Join(d.Staging.Close(ctx), d.Prime.Close(ctx))
}

// Run performs the whole flow and returns with the registries still running;
// the caller closes them.
func Run(ctx context.Context, opts Options) (_ *Demo, err error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("demo: no directory")
	}
	step := opts.Step
	if step == nil {
		step = func(string) {}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	d := &Demo{Dir: opts.Dir}
	if d.Staging, err = registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", Memory: true}); err != nil {
		return nil, fmt.Errorf("demo: staging registry: %w", err)
	}
	if d.Prime, err = registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", Memory: true}); err != nil {
		d.Staging.Close(ctx)
		return nil, fmt.Errorf("demo: prime registry: %w", err)
	}
	defer func() {
		if err != nil {
			d.Close(context.Background())
		}
	}()
	staging, prime := d.Staging.Addr(), d.Prime.Addr()
	step(fmt.Sprintf("registries: staging %s, prime %s (CNCF Distribution, in memory, no referrers API)", staging, prime))

	c := oci.NewClient()

	// 1. What CI pushes: one index per platform, image + provenance.
	for _, comp := range append(append([]component(nil), release...), rogue) {
		for _, p := range platforms {
			tag := fmt.Sprintf("%s/%s:%s-%s-%s", staging, comp.name, Version, p.OS, p.Architecture)
			img, err := buildkit.Build(buildkit.Options{
				Component: comp.name, Source: comp.source, Revision: revision, Ref: tag,
				Platform: p, Created: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
			})
			if err != nil {
				return nil, err
			}
			ref, err := name.NewTag(tag)
			if err != nil {
				return nil, err
			}
			if err := remote.WriteIndex(ref, img.Index(), remote.WithContext(ctx)); err != nil {
				return nil, fmt.Errorf("demo: push %s: %w", tag, err)
			}
		}
	}
	step(fmt.Sprintf("build: %d components × %d platforms pushed as BuildKit per-platform indexes (image + SLSA v1 provenance)", len(release)+1, len(platforms)))

	// 2. index create: the per-platform indexes into one release index each.
	indexes := map[string]*index.Created{}
	for _, comp := range append(append([]component(nil), release...), rogue) {
		target, err := name.NewTag(fmt.Sprintf("%s/%s:%s", staging, comp.name, Version))
		if err != nil {
			return nil, err
		}
		var sources []name.Reference
		for _, p := range platforms {
			s, err := name.NewTag(fmt.Sprintf("%s/%s:%s-%s-%s", staging, comp.name, Version, p.OS, p.Architecture))
			if err != nil {
				return nil, err
			}
			sources = append(sources, s)
		}
		created, err := index.Create(ctx, c, target, sources, index.CreateOptions{})
		if err != nil {
			return nil, err
		}
		indexes[comp.name] = created
		step(fmt.Sprintf("index create: %s (%d manifests: %d platforms + their attestation manifests)", created.Reference, len(created.Manifests), len(platforms)))
	}

	// 3. A release key, in cosign's format.
	password := make([]byte, 16)
	if _, err := rand.Read(password); err != nil {
		return nil, err
	}
	password = []byte(hex.EncodeToString(password))
	priv, pub, err := signing.GenerateKeyPair(password)
	if err != nil {
		return nil, err
	}
	d.PublicKey = filepath.Join(d.Dir, "release.pub")
	if err := os.WriteFile(filepath.Join(d.Dir, "release.key"), priv, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.PublicKey, pub, 0o644); err != nil {
		return nil, err
	}
	key, err := signing.LoadPrivateKey(priv, password)
	if err != nil {
		return nil, err
	}
	signer, err := signing.NewKeySigner(key, signing.Services{})
	if err != nil {
		return nil, err
	}
	step("key generate: release.key / release.pub (cosign format, ECDSA P-256)")

	// 4. sign --recursive: each index and each platform manifest, by digest.
	var toSign []string
	for _, comp := range release {
		toSign = append(toSign, indexes[comp.name].Reference)
	}
	signed, err := signing.Sign(ctx, c, toSign, signing.Options{Signer: signer, Recursive: true, Format: signing.FormatBundle})
	if err != nil {
		return nil, err
	}
	step(fmt.Sprintf("sign --recursive: %d signatures (Sigstore bundles as OCI referrers, fallback tag)", len(signed)))

	// 5. attest --from-buildkit: each platform's provenance, signed against
	// its own platform manifest.
	attested, err := attest.FromBuildKit(ctx, c, toSign, attest.Options{Signer: signer})
	if err != nil {
		return nil, err
	}
	step(fmt.Sprintf("attest --from-buildkit: %d provenance statements signed, each against its own platform manifest", len(attested)))

	// 6. The policy, then copy to prime behind the gate.
	d.Policy = filepath.Join(d.Dir, "policy.yaml")
	if err := os.WriteFile(d.Policy, []byte(policyYAML(staging, prime)), 0o644); err != nil {
		return nil, err
	}
	pol, err := policy.Load(d.Policy)
	if err != nil {
		return nil, err
	}
	v, err := verify.New(pol, nil, verify.WithClock(now))
	if err != nil {
		return nil, err
	}
	report := &Report{}
	for _, comp := range release {
		src := indexes[comp.name].Reference
		dst := fmt.Sprintf("%s/%s:%s", prime, comp.name, Version)
		if err := promoteGated(ctx, c, v, src, dst); err != nil {
			return nil, err
		}
		step(fmt.Sprintf("copy --policy: %s → %s (verified at staging, copied with referrers, verified at prime)", strings.TrimPrefix(src, staging+"/"), dst))
	}
	rogueSrc := indexes[rogue.name].Reference
	rogueErr := promoteGated(ctx, c, v, rogueSrc, fmt.Sprintf("%s/%s:%s", prime, rogue.name, Version))
	step(fmt.Sprintf("copy --policy: %s refused at the gate: %v", rogue.name, rogueErr))

	// 7. verify at prime: the consumer's view.
	var refs []name.Reference
	for _, comp := range release {
		r, err := name.NewTag(fmt.Sprintf("%s/%s:%s", prime, comp.name, Version))
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	rr, err := name.NewTag(rogueSrc[:strings.LastIndex(rogueSrc, "@")])
	if err != nil {
		return nil, err
	}
	results := v.VerifyAll(ctx, c, append(refs, rr), 4, nil)
	report.Passed = rogueErr != nil
	for i, res := range results {
		row := rowOf(res, indexes)
		if i == len(results)-1 {
			report.Rejected = row
			report.Passed = report.Passed && !res.Passed
			continue
		}
		report.Rows = append(report.Rows, row)
		report.Passed = report.Passed && res.Passed
	}
	step(fmt.Sprintf("verify --policy at prime: %d images checked", len(refs)))
	d.Report = report
	return d, nil
}

// revision is the commit the release was built from: the provenance's vcs
// metadata names it with the source repository, which the policy checks.
var revision = strings.Repeat("5e", 20)

func rowOf(res verify.Result, indexes map[string]*index.Created) Row {
	row := Row{Image: res.Image, Digest: res.Digest, Rule: res.Rule, Passed: res.Passed}
	for _, comp := range append(append([]component(nil), release...), rogue) {
		if strings.Contains(res.Image, "/"+comp.name+":") {
			for _, m := range indexes[comp.name].Manifests {
				if m.Kind == index.KindImage {
					row.Platforms = append(row.Platforms, m.Platform)
				}
			}
		}
	}
	for _, s := range res.Signatures {
		if s.Verified {
			row.Signatures++
		}
	}
	for _, a := range res.Attestations {
		if a.Verified {
			row.Attestations++
		}
	}
	if res.Exception != nil {
		row.Exception = res.Exception.Reason + " (until " + res.Exception.Expires + ")"
	}
	if !res.Passed {
		row.Reason = strings.Join(res.Errors, "; ")
	}
	return row
}

// policyYAML is the consumer's policy: images of example/ must be signed by
// the release key and carry SLSA v1 provenance for every platform whose
// source repository is the image's own — except server-agent, which the
// server repository builds: a named exception with an expiry.
func policyYAML(registries ...string) string {
	var images []string
	for _, r := range registries {
		images = append(images, fmt.Sprintf("%q", r+"/example/**"))
	}
	var agents []string
	for _, r := range registries {
		agents = append(agents, fmt.Sprintf("%q", r+"/example/server-agent"))
	}
	return `apiVersion: seal.dev/v1alpha1
kind: Policy
trust:
  keys:
    release: {path: release.pub}
unmatched: deny
rules:
  - name: release
    images: [` + strings.Join(images, ", ") + `]
    signatures:
      authorities:
        - key: release
    attestations:
      - predicateType: https://slsa.dev/provenance/v1
        platforms: all
        condition: >-
          predicate.runDetails.metadata.buildkit_metadata.vcs.source ==
          "https://github.com/example/" + image.name
  - name: agent-built-by-server
    images: [` + strings.Join(agents, ", ") + `]
    extends: release
    vars: {Name: server}
    exception:
      reason: "server-agent is built and signed by the example/server release workflow"
      expires: 2027-06-30
`
}

// promoteGated copies src to dst the way `seal copy --policy` does: src must
// pass first, dst is verified before its tag is written.
func promoteGated(ctx context.Context, c *oci.Client, v *verify.Verifier, src, dst string) error {
	s, d, err := promote.ParsePair(c, src, dst)
	if err != nil {
		return err
	}
	_, err = promote.Copy(ctx, c, s, d, promote.Options{Gate: promote.VerifierGate(v, c)})
	return err
}
