package buildkit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"time"
)

// The types below reproduce the statement BuildKit v0.34 writes for
// attest:provenance=mode=max,version=v1 (see the fixtures), field for field
// and in the same order. The LLB build configuration is marshalled by
// BuildKit through generic maps, so its keys are sorted; the Dockerfile
// frontend's own LLB (under buildkit_metadata.source.infos) keeps struct order.

type statement struct {
	Type          string    `json:"_type"`
	PredicateType string    `json:"predicateType"`
	Subject       []subject `json:"subject"`
	Predicate     any       `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type slsaProvenance struct {
	BuildDefinition buildDefinition `json:"buildDefinition"`
	RunDetails      runDetails      `json:"runDetails"`
}

// buildDefinition has no resolvedDependencies: a FROM scratch build from a
// local context has none, which buildkit_completeness records.
type buildDefinition struct {
	BuildType          string             `json:"buildType"`
	ExternalParameters externalParameters `json:"externalParameters"`
	InternalParameters internalParameters `json:"internalParameters"`
}

type externalParameters struct {
	ConfigSource struct{} `json:"configSource"`
	Request      request  `json:"request"`
}

type request struct {
	Frontend             string            `json:"frontend"`
	Args                 map[string]string `json:"args"`
	Locals               []local           `json:"locals"`
	Root                 rootRequest       `json:"root"`
	CompatibilityVersion int               `json:"compatibilityVersion"`
}

type rootRequest struct {
	ConfigSource struct{} `json:"configSource"`
	Request      struct {
		Args map[string]string `json:"args"`
	} `json:"request"`
}

type local struct {
	Name string `json:"name"`
}

type internalParameters struct {
	BuildConfig       map[string]any `json:"buildConfig"`
	BuilderPlatform   string         `json:"builderPlatform"`
	DockerfileVersion string         `json:"dockerfileVersion"`
}

type runDetails struct {
	Builder  builderID   `json:"builder"`
	Metadata runMetadata `json:"metadata"`
}

type builderID struct {
	ID string `json:"id"`
}

type runMetadata struct {
	InvocationID     string           `json:"invocationId"`
	StartedOn        time.Time        `json:"startedOn"`
	FinishedOn       time.Time        `json:"finishedOn"`
	BuildKitMetadata buildkitMetadata `json:"buildkit_metadata"`
	Completeness     completeness     `json:"buildkit_completeness"`
}

type buildkitMetadata struct {
	VCS    map[string]string         `json:"vcs,omitempty"`
	Source sourceMap                 `json:"source"`
	Layers map[string][][]descriptor `json:"layers"`
}

type sourceMap struct {
	Locations map[string]stepLocations `json:"locations"`
	Infos     []sourceInfo             `json:"infos"`
}

type stepLocations struct {
	Locations []location `json:"locations,omitempty"`
}

type location struct {
	Ranges []lineRange `json:"ranges"`
}

type lineRange struct {
	Start linePos `json:"start"`
	End   linePos `json:"end"`
}

type linePos struct {
	Line int `json:"line"`
}

type sourceInfo struct {
	Filename      string            `json:"filename"`
	Language      string            `json:"language"`
	Data          []byte            `json:"data"`
	LLBDefinition []infoStep        `json:"llbDefinition"`
	DigestMapping map[string]string `json:"digestMapping"`
}

type infoStep struct {
	ID     string   `json:"id"`
	Op     infoOp   `json:"op"`
	Inputs []string `json:"inputs,omitempty"`
}

type infoOp struct {
	Op          infoOpBody `json:"Op"`
	Constraints *struct{}  `json:"constraints,omitempty"`
}

type infoOpBody struct {
	Source *infoSource `json:"source,omitempty"`
}

type infoSource struct {
	Identifier string            `json:"identifier"`
	Attrs      map[string]string `json:"attrs"`
}

type completeness struct {
	Request              bool `json:"request"`
	ResolvedDependencies bool `json:"resolvedDependencies"`
}

// Constants of the fixtures' builder: BuildKit v0.34.2 on linux/amd64 with
// the Dockerfile frontend it embeds.
const (
	builderPlatform      = "linux/amd64"
	dockerfileVersion    = "1.26.0-dev"
	compatibilityVersion = 30
	copyLine             = 5 // the COPY instruction's line in the Dockerfile
)

// dockerfile is the Dockerfile the fixtures were built from, with the
// source label the component's.
func dockerfile(o Options) string {
	return "FROM scratch\nARG TARGETARCH\nARG TARGETVARIANT\nARG COMPONENT\n" +
		"COPY hello-${TARGETARCH}${TARGETVARIANT}.txt /hello.txt\n" +
		"LABEL org.opencontainers.image.source=" + o.Source + " org.opencontainers.image.title=${COMPONENT}\n"
}

func provenanceStatement(o Options, subj []subject, layer *rawLayer) ([]byte, error) {
	seed := buildSeed(o)
	args := map[string]string{"build-arg:COMPONENT": o.Component}
	rootArgs := map[string]string{"build-arg:COMPONENT": o.Component}

	file := helloFile(o.Platform)
	steps := []map[string]any{
		{"id": "step0", "op": map[string]any{
			"Op": map[string]any{"source": map[string]any{
				"attrs": map[string]string{
					"local.followpaths":   `["` + file + `"]`,
					"local.sharedkeyhint": "context",
				},
				"identifier": "local://context",
			}},
			"constraints": map[string]any{},
		}},
		{"id": "step1", "inputs": []string{"step0:0"}, "op": map[string]any{
			"Op": map[string]any{"file": map[string]any{"actions": []any{map[string]any{
				"Action": map[string]any{"copy": map[string]any{
					"allowEmptyWildcard": true,
					"allowWildcard":      true,
					"createDestPath":     true,
					"dest":               "/hello.txt",
					"dirCopyContents":    true,
					"followSymlink":      true,
					"mode":               -1,
					"src":                "/" + file,
					"timestamp":          -1,
				}},
				"input":          -1,
				"output":         0,
				"secondaryInput": 0,
			}}}},
			"constraints": map[string]any{},
		}},
		{"id": "step2", "inputs": []string{"step1:0"}, "op": map[string]any{"Op": map[string]any{}}},
	}
	buildSteps := make([]any, len(steps))
	for i, s := range steps {
		buildSteps[i] = s
	}
	mapping, err := digestMapping(seed, "context", buildSteps)
	if err != nil {
		return nil, err
	}

	dfSteps := []infoStep{
		{ID: "step0", Op: infoOp{
			Op: infoOpBody{Source: &infoSource{
				Identifier: "local://dockerfile",
				Attrs: map[string]string{
					"local.differ":        "none",
					"local.followpaths":   `["Dockerfile","Dockerfile.dockerignore","dockerfile"]`,
					"local.sharedkeyhint": "dockerfile",
				},
			}},
			Constraints: &struct{}{},
		}},
		{ID: "step1", Op: infoOp{}, Inputs: []string{"step0:0"}},
	}
	dfAny := make([]any, len(dfSteps))
	for i, s := range dfSteps {
		dfAny[i] = s
	}
	dfMapping, err := digestMapping(seed, "dockerfile", dfAny)
	if err != nil {
		return nil, err
	}

	layerDesc := descriptor{MediaType: layer.mediaType, Digest: layer.digest, Size: int64(len(layer.data))}
	md := buildkitMetadata{
		Source: sourceMap{
			Locations: map[string]stepLocations{
				"step0": {},
				"step1": {Locations: []location{{Ranges: []lineRange{{Start: linePos{copyLine}, End: linePos{copyLine}}}}}},
			},
			Infos: []sourceInfo{{
				Filename:      "Dockerfile",
				Language:      "Dockerfile",
				Data:          []byte(dockerfile(o)),
				LLBDefinition: dfSteps,
				DigestMapping: dfMapping,
			}},
		},
		Layers: map[string][][]descriptor{"step1:0": {{layerDesc}}},
	}
	if o.Revision != "" {
		md.VCS = map[string]string{"revision": o.Revision, "source": o.Source}
	}

	pred := slsaProvenance{
		BuildDefinition: buildDefinition{
			BuildType: BuildTypeBuildKit,
			ExternalParameters: externalParameters{Request: request{
				Frontend:             "dockerfile.v0",
				Args:                 args,
				Locals:               []local{{Name: "context"}, {Name: "dockerfile"}},
				CompatibilityVersion: compatibilityVersion,
			}},
			InternalParameters: internalParameters{
				BuildConfig: map[string]any{
					"digestMapping": mapping,
					"llbDefinition": buildSteps,
				},
				BuilderPlatform:   builderPlatform,
				DockerfileVersion: dockerfileVersion,
			},
		},
		RunDetails: runDetails{
			Builder: builderID{ID: o.BuilderID},
			Metadata: runMetadata{
				InvocationID:     invocationID(seed),
				StartedOn:        o.Created,
				FinishedOn:       o.Created.Add(33 * time.Millisecond),
				BuildKitMetadata: md,
				Completeness:     completeness{Request: true, ResolvedDependencies: false},
			},
		},
	}
	pred.BuildDefinition.ExternalParameters.Request.Root.Request.Args = rootArgs
	return json.Marshal(statement{
		Type:          StatementTypeV1,
		PredicateType: PredicateSLSAProvenance1,
		Subject:       subj,
		Predicate:     pred,
	})
}

// buildSeed identifies a build for the values BuildKit draws at random or
// from its cache (invocation ID, LLB digests): a function of the options,
// so the output stays deterministic while differing between builds.
func buildSeed(o Options) string {
	return strings.Join([]string{o.Component, o.Source, o.Ref, platformString(o.Platform), o.Created.Format(time.RFC3339Nano), string(o.Content)}, "\x00")
}

// digestMapping maps a stand-in digest to each LLB step. BuildKit hashes
// each op's protobuf encoding; here the step's JSON is hashed with the seed.
func digestMapping(seed, scope string, steps []any) (map[string]string, error) {
	out := make(map[string]string, len(steps))
	for _, s := range steps {
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		var id struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &id); err != nil {
			return nil, err
		}
		h := sha256.New()
		h.Write([]byte("llb\x00" + scope + "\x00" + seed + "\x00"))
		h.Write(raw)
		out["sha256:"+hex.EncodeToString(h.Sum(nil))] = id.ID
	}
	return out, nil
}

// invocationID has the form of BuildKit's identity.NewID: 25 characters of
// lowercase base 36.
func invocationID(seed string) string {
	sum := sha256.Sum256([]byte("invocation\x00" + seed))
	s := new(big.Int).SetBytes(sum[:]).Text(36)
	for len(s) < 25 {
		s = "0" + s
	}
	return s[:25]
}
