package attestation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/seal-dev/seal/pkg/fault"
)

// ValidatePredicate checks a predicate before it is signed: a JSON object
// (not a whole in-toto statement), and for the types seal knows, the fields
// their specifications require, with the right JSON types. All problems are
// reported in one input error.
//
// SLSA builder ids must be present but may be empty: BuildKit writes
// "builder":{"id":""} unless a builder-id is configured, and refusing that
// would refuse BuildKit's own provenance. Whether an empty builder is
// acceptable is a policy question, asked at verification.
func ValidatePredicate(predicateType string, data []byte) error {
	if err := validatePredicate(predicateType, data); err != nil {
		return fault.Wrap(fault.Input, fmt.Errorf("predicate (%s): %w", predicateType, err))
	}
	return nil
}

func validatePredicate(predicateType string, data []byte) error {
	if len(data) > MaxStatementSize {
		return fmt.Errorf("%d bytes, more than the %d-byte limit", len(data), MaxStatementSize)
	}
	top, err := decodeObject(data)
	if err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := top["_type"]; ok {
		if _, ok := top["predicateType"]; ok {
			return fmt.Errorf("this is a whole in-toto statement, not a predicate: give its \"predicate\" object instead")
		}
	}
	c := &checker{}
	switch predicateType {
	case PredicateSLSAProvenanceV1, PredicateSLSAProvenanceV02:
		v, err := decodeAny(data)
		if err != nil {
			return err
		}
		if predicateType == PredicateSLSAProvenanceV1 {
			c.slsaV1(v.(map[string]any))
		} else {
			c.slsaV02(v.(map[string]any))
		}
	case PredicateSPDX:
		// SBOMs run to megabytes: decode only the field that is checked.
		if s := c.str(topFields(top, "spdxVersion"), "", "spdxVersion", true, false); s != nil && !strings.HasPrefix(*s, "SPDX-") {
			c.bad("spdxVersion %q does not start with SPDX-", *s)
		}
	case PredicateCycloneDX:
		if s := c.str(topFields(top, "bomFormat"), "", "bomFormat", true, false); s != nil && *s != "CycloneDX" {
			c.bad("bomFormat is %q, want CycloneDX", *s)
		}
	}
	return c.err()
}

// topFields decodes just the named top-level fields.
func topFields(top map[string]json.RawMessage, names ...string) map[string]any {
	m := map[string]any{}
	for _, n := range names {
		if raw, ok := top[n]; ok {
			if v, err := decodeAny(raw); err == nil {
				m[n] = v
			}
		}
	}
	return m
}

func (c *checker) slsaV1(p map[string]any) {
	if bd := c.obj(p, "", "buildDefinition", true); bd != nil {
		const at = "buildDefinition"
		c.str(bd, at, "buildType", true, false)
		if _, ok := bd["externalParameters"]; !ok {
			c.missing = append(c.missing, at+".externalParameters")
		}
		c.obj(bd, at, "externalParameters", false)
		c.obj(bd, at, "internalParameters", false)
		c.descriptors(bd, at, "resolvedDependencies")
	}
	if rd := c.obj(p, "", "runDetails", true); rd != nil {
		const at = "runDetails"
		if b := c.obj(rd, at, "builder", true); b != nil {
			c.str(b, at+".builder", "id", true, true)
			c.descriptors(b, at+".builder", "builderDependencies")
			c.obj(b, at+".builder", "version", false)
		}
		if md := c.obj(rd, at, "metadata", false); md != nil {
			c.str(md, at+".metadata", "invocationId", false, true)
			c.timestamp(md, at+".metadata", "startedOn")
			c.timestamp(md, at+".metadata", "finishedOn")
		}
		c.descriptors(rd, at, "byproducts")
	}
}

func (c *checker) slsaV02(p map[string]any) {
	if b := c.obj(p, "", "builder", true); b != nil {
		c.str(b, "builder", "id", true, true)
	}
	c.str(p, "", "buildType", true, false)
	if inv := c.obj(p, "", "invocation", false); inv != nil {
		if cs := c.obj(inv, "invocation", "configSource", false); cs != nil {
			c.str(cs, "invocation.configSource", "uri", false, true)
			c.digestSet(cs, "invocation.configSource", "digest")
			c.str(cs, "invocation.configSource", "entryPoint", false, true)
		}
		c.obj(inv, "invocation", "parameters", false)
		c.obj(inv, "invocation", "environment", false)
	}
	c.obj(p, "", "buildConfig", false)
	if md := c.obj(p, "", "metadata", false); md != nil {
		c.str(md, "metadata", "buildInvocationId", false, true)
		c.str(md, "metadata", "buildInvocationID", false, true) // BuildKit's spelling
		c.timestamp(md, "metadata", "buildStartedOn")
		c.timestamp(md, "metadata", "buildFinishedOn")
		c.obj(md, "metadata", "completeness", false)
	}
	c.descriptors(p, "", "materials")
}

// checker collects every problem of a predicate so one error names them all.
type checker struct {
	missing []string
	others  []string
}

func (c *checker) bad(format string, args ...any) {
	c.others = append(c.others, fmt.Sprintf(format, args...))
}

func (c *checker) err() error {
	var parts []string
	switch len(c.missing) {
	case 0:
	case 1:
		parts = append(parts, "missing required field "+c.missing[0])
	default:
		parts = append(parts, "missing required fields "+strings.Join(c.missing, ", "))
	}
	parts = append(parts, c.others...)
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}

// obj returns parent[key] as an object. A missing required object counts as
// empty, so its own required fields are reported by their full paths.
func (c *checker) obj(parent map[string]any, at, key string, required bool) map[string]any {
	v, ok := parent[key]
	if !ok {
		if required {
			return map[string]any{}
		}
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.bad("%s is a JSON %s, want an object", join(at, key), kindOf(v))
		return nil
	}
	return m
}

func (c *checker) str(parent map[string]any, at, key string, required, emptyOK bool) *string {
	v, ok := parent[key]
	if !ok {
		if required {
			c.missing = append(c.missing, join(at, key))
		}
		return nil
	}
	s, ok := v.(string)
	if !ok {
		c.bad("%s is a JSON %s, want a string", join(at, key), kindOf(v))
		return nil
	}
	if s == "" && !emptyOK {
		c.bad("%s is empty", join(at, key))
		return nil
	}
	return &s
}

func (c *checker) timestamp(parent map[string]any, at, key string) {
	if s := c.str(parent, at, key, false, false); s != nil {
		if _, err := time.Parse(time.RFC3339Nano, *s); err != nil {
			c.bad("%s %q is not an RFC 3339 timestamp", join(at, key), *s)
		}
	}
}

func (c *checker) digestSet(parent map[string]any, at, key string) {
	v, ok := parent[key]
	if !ok {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.bad("%s is a JSON %s, want an object", join(at, key), kindOf(v))
		return
	}
	d := make(map[string]string, len(m))
	for alg, hv := range m {
		s, ok := hv.(string)
		if !ok {
			c.bad("%s.%s is a JSON %s, want a string", join(at, key), alg, kindOf(hv))
			return
		}
		d[alg] = s
	}
	if err := checkDigestSet(d); err != nil {
		c.bad("%s: %v", join(at, key), err)
	}
}

// descriptors checks an optional array of in-toto resource descriptors.
func (c *checker) descriptors(parent map[string]any, at, key string) {
	v, ok := parent[key]
	if !ok || v == nil {
		return
	}
	list, ok := v.([]any)
	if !ok {
		c.bad("%s is a JSON %s, want an array", join(at, key), kindOf(v))
		return
	}
	for i, e := range list {
		path := fmt.Sprintf("%s[%d]", join(at, key), i)
		rd, ok := e.(map[string]any)
		if !ok {
			c.bad("%s is a JSON %s, want an object", path, kindOf(e))
			continue
		}
		_, hasURI := rd["uri"]
		_, hasName := rd["name"]
		_, hasDigest := rd["digest"]
		if !hasURI && !hasName && !hasDigest {
			c.bad("%s has none of uri, name, digest", path)
		}
		c.str(rd, path, "uri", false, true)
		c.str(rd, path, "name", false, true)
		c.digestSet(rd, path, "digest")
	}
}
