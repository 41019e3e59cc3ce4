package attestation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"

	"github.com/seal-dev/seal/pkg/fault"
)

// Build types of BuildKit's provenance: the v0.2 one, and the one its v1
// provenance uses (docs/attestations/slsa-definitions.md in moby/buildkit).
const (
	BuildKitBuildTypeV02 = "https://mobyproject.org/buildkit@v1"
	BuildKitBuildTypeV1  = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
)

const buildKitV02Ext = "https://mobyproject.org/buildkit@v1#"

// ConvertV02ToV1 converts an SLSA provenance v0.2 predicate to v1 as the
// SLSA v1.0 specification's "Migrating from 0.2" section describes:
//
//	buildType                  → buildDefinition.buildType
//	invocation.parameters      → buildDefinition.externalParameters (merged with the two below)
//	invocation.configSource.entryPoint → externalParameters.entryPoint
//	invocation.configSource.uri        → externalParameters.source
//	invocation.environment     → buildDefinition.internalParameters
//	materials (+ configSource uri/digest) → buildDefinition.resolvedDependencies
//	builder.id                 → runDetails.builder.id
//	metadata.buildInvocationId → runDetails.metadata.invocationId
//	metadata.buildStartedOn / buildFinishedOn → runDetails.metadata.startedOn / finishedOn
//	buildConfig                → runDetails.byproducts[name=buildConfig] (its digest, and its content)
//	metadata.completeness, metadata.reproducible → dropped (implied by builder.id in v1)
//
// Extension fields (unknown keys at the top level, in builder and in
// metadata) are carried over unchanged.
//
// The specification says the buildType "MUST be updated" because the field
// layout changes. A converter cannot invent a build type for someone else's
// builder, so the old one is kept — except for BuildKit's, whose v1 build type
// and layout BuildKit itself defines: a BuildKit v0.2 predicate becomes
// exactly what BuildKit writes with version=v1 (externalParameters.configSource
// {uri, digest, path} and externalParameters.request; internalParameters
// buildConfig and builderPlatform; runDetails.metadata.buildkit_* extensions),
// so a policy written for BuildKit's v1 provenance reads converted provenance
// too.
func ConvertV02ToV1(pred []byte) ([]byte, error) {
	if err := ValidatePredicate(PredicateSLSAProvenanceV02, pred); err != nil {
		return nil, err
	}
	v, err := decodeAny(pred)
	if err != nil {
		return nil, fault.Inputf("SLSA v0.2 provenance: %w", err)
	}
	old := v.(map[string]any)
	var out map[string]any
	if old["buildType"] == BuildKitBuildTypeV02 {
		out, err = convertBuildKit(old)
	} else {
		out, err = convertGeneric(old)
	}
	if err != nil {
		return nil, fault.Inputf("convert SLSA v0.2 provenance to v1: %w", err)
	}
	b, err := marshal(out)
	if err != nil {
		return nil, err
	}
	// The result must satisfy the same checks as a predicate given by hand.
	if err := ValidatePredicate(PredicateSLSAProvenanceV1, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ConvertStatementV02ToV1 converts a statement carrying SLSA v0.2 provenance
// into an in-toto Statement v1 carrying v1 provenance about the same subjects.
func ConvertStatementV02ToV1(statement []byte) ([]byte, error) {
	st, err := ParseStatement(statement)
	if err != nil {
		return nil, err
	}
	if st.PredicateType != PredicateSLSAProvenanceV02 {
		return nil, fault.Inputf("convert statement: predicate type is %s, want %s", st.PredicateType, PredicateSLSAProvenanceV02)
	}
	if st.Predicate == nil {
		return nil, fault.Inputf("convert statement: no predicate")
	}
	pred, err := ConvertV02ToV1(st.Predicate)
	if err != nil {
		return nil, err
	}
	return NewStatement(PredicateSLSAProvenanceV1, pred, st.Subject...)
}

var v02Fields = map[string]bool{"builder": true, "buildType": true, "invocation": true, "buildConfig": true, "metadata": true, "materials": true}

func convertGeneric(old map[string]any) (map[string]any, error) {
	inv := object(old["invocation"])
	cs := object(inv["configSource"])

	ext := map[string]any{}
	for k, v := range object(inv["parameters"]) {
		ext[k] = v
	}
	if ep, _ := cs["entryPoint"].(string); ep != "" {
		if _, clash := ext["entryPoint"]; clash {
			return nil, fmt.Errorf("invocation.parameters already has an entryPoint; cannot add invocation.configSource.entryPoint")
		}
		ext["entryPoint"] = ep
	}
	if uri, _ := cs["uri"].(string); uri != "" {
		if _, clash := ext["source"]; clash {
			return nil, fmt.Errorf("invocation.parameters already has a source; cannot add invocation.configSource.uri")
		}
		ext["source"] = uri
	}
	bd := map[string]any{"buildType": old["buildType"], "externalParameters": ext}
	if env, ok := inv["environment"]; ok && env != nil {
		bd["internalParameters"] = env
	}
	if deps := resolvedDependencies(old, cs); len(deps) > 0 {
		bd["resolvedDependencies"] = deps
	}

	rd := map[string]any{"builder": old["builder"]}
	md := metadataV1(object(old["metadata"]))
	for k, v := range object(old["metadata"]) {
		if !v02Metadata[k] {
			md[k] = v
		}
	}
	if len(md) > 0 {
		rd["metadata"] = md
	}
	if bc, ok := old["buildConfig"]; ok && bc != nil {
		raw, err := marshal(bc)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		rd["byproducts"] = []any{map[string]any{
			"name":      "buildConfig",
			"mediaType": "application/json",
			"digest":    map[string]any{"sha256": hex.EncodeToString(sum[:])},
			"content":   raw, // []byte marshals as base64, as ResourceDescriptor.content is
		}}
	}

	out := map[string]any{"buildDefinition": bd, "runDetails": rd}
	for k, v := range old {
		if !v02Fields[k] {
			out[k] = v
		}
	}
	return out, nil
}

func convertBuildKit(old map[string]any) (map[string]any, error) {
	inv := object(old["invocation"])
	cs := object(inv["configSource"])

	configSource := map[string]any{}
	if uri, _ := cs["uri"].(string); uri != "" {
		configSource["uri"] = uri
	}
	if d, ok := cs["digest"]; ok && len(object(d)) > 0 {
		configSource["digest"] = d
	}
	if ep, _ := cs["entryPoint"].(string); ep != "" {
		configSource["path"] = ep
	}
	ext := map[string]any{"configSource": configSource}
	if p, ok := inv["parameters"]; ok && p != nil {
		ext["request"] = p
	}

	internal := map[string]any{}
	if bc, ok := old["buildConfig"]; ok && bc != nil {
		internal["buildConfig"] = bc
	}
	for k, v := range object(inv["environment"]) {
		if k == "platform" {
			internal["builderPlatform"] = v
		} else {
			internal[k] = v
		}
	}
	bd := map[string]any{"buildType": BuildKitBuildTypeV1, "externalParameters": ext}
	if len(internal) > 0 {
		bd["internalParameters"] = internal
	}
	if deps := resolvedDependencies(old, cs); len(deps) > 0 {
		bd["resolvedDependencies"] = deps
	}

	oldMD := object(old["metadata"])
	md := metadataV1(oldMD)
	for k, v := range oldMD {
		switch k {
		case buildKitV02Ext + "metadata":
			md["buildkit_metadata"] = v
		case buildKitV02Ext + "hermetic":
			if v == true {
				md["buildkit_hermetic"] = true
			}
		case "reproducible":
			if v == true {
				md["buildkit_reproducible"] = true
			}
		case "completeness":
			c := object(v)
			md["buildkit_completeness"] = map[string]any{
				"request":              c["parameters"] == true,
				"resolvedDependencies": c["materials"] == true,
			}
		default:
			if !v02Metadata[k] {
				md[k] = v
			}
		}
	}
	rd := map[string]any{"builder": old["builder"]}
	if len(md) > 0 {
		rd["metadata"] = md
	}
	out := map[string]any{"buildDefinition": bd, "runDetails": rd}
	for k, v := range old {
		if !v02Fields[k] {
			out[k] = v
		}
	}
	return out, nil
}

// v02Metadata are the metadata fields v1 renames or drops.
var v02Metadata = map[string]bool{
	"buildInvocationId": true, "buildInvocationID": true,
	"buildStartedOn": true, "buildFinishedOn": true,
	"completeness": true, "reproducible": true,
}

func metadataV1(old map[string]any) map[string]any {
	md := map[string]any{}
	if id, ok := old["buildInvocationId"]; ok {
		md["invocationId"] = id
	} else if id, ok := old["buildInvocationID"]; ok {
		md["invocationId"] = id
	}
	if t, ok := old["buildStartedOn"]; ok {
		md["startedOn"] = t
	}
	if t, ok := old["buildFinishedOn"]; ok {
		md["finishedOn"] = t
	}
	return md
}

// resolvedDependencies is materials plus the config source, which v1 no
// longer special-cases, unless a material already names it.
func resolvedDependencies(old, cs map[string]any) []any {
	var deps []any
	if ms, ok := old["materials"].([]any); ok {
		deps = append(deps, ms...)
	}
	uri, _ := cs["uri"].(string)
	if uri == "" {
		return deps
	}
	src := map[string]any{"uri": uri}
	if d := object(cs["digest"]); len(d) > 0 {
		src["digest"] = d
	}
	for _, m := range deps {
		mm := object(m)
		if mm["uri"] == uri && reflect.DeepEqual(object(mm["digest"]), object(src["digest"])) {
			return deps
		}
	}
	return append(deps, src)
}

// object returns v as an object, or an empty one; callers have validated
// the predicate already, so a wrong type here only means "absent".
func object(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}
