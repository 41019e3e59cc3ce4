package index

import (
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/seal-dev/seal/pkg/fault"
)

// ParsePlatform parses OS/ARCH[/VARIANT][:OSVERSION], e.g. "linux/arm64/v8" or
// "windows/amd64:10.0.17763.1234". A malformed value is a fault.Input error.
func ParsePlatform(s string) (v1.Platform, error) {
	spec, osVersion, hasVersion := strings.Cut(s, ":")
	parts := strings.Split(spec, "/")
	bad := len(parts) < 2 || len(parts) > 3 || (hasVersion && osVersion == "") ||
		strings.ContainsAny(s, " \t\r\n")
	for _, p := range parts {
		bad = bad || p == ""
	}
	if bad {
		return v1.Platform{}, fault.Inputf("platform %q: want OS/ARCH[/VARIANT][:OSVERSION], e.g. linux/arm64/v8", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1], OSVersion: osVersion}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FormatPlatform is the inverse of ParsePlatform: OS/ARCH[/VARIANT][:OSVERSION].
// A nil or empty platform formats as "unknown/unknown", the value BuildKit
// gives attestation manifests, so a listing never shows an empty cell.
func FormatPlatform(p *v1.Platform) string {
	if p == nil || p.OS == "" || p.Architecture == "" {
		return "unknown/unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	if p.OSVersion != "" {
		s += ":" + p.OSVersion
	}
	return s
}

// hasPlatform reports whether p names a real os/architecture (not absent, not
// BuildKit's unknown/unknown placeholder).
func hasPlatform(p *v1.Platform) bool {
	return p != nil && p.OS != "" && p.Architecture != "" && p.OS != "unknown" && p.Architecture != "unknown"
}

// normVariant maps the variants that runtimes treat as the default of their
// architecture to one spelling, as containerd's platform matcher does: an
// arm64 image with variant v8 and one without a variant run on the same hosts,
// so they are the same platform.
func normVariant(arch, variant string) string {
	switch {
	case arch == "arm64" && variant == "v8", arch == "amd64" && variant == "v1":
		return ""
	case arch == "arm" && variant == "":
		return "v7"
	}
	return variant
}

// platformKey identifies a platform for conflict detection: two different
// manifests with the same key would be ambiguous to a runtime pulling the index.
// os.version is part of it (Windows publishes one image per OS build);
// os.features and features are not.
func platformKey(p v1.Platform) string {
	return p.OS + "/" + p.Architecture + "/" + normVariant(p.Architecture, p.Variant) + ":" + p.OSVersion
}

// MatchPlatform reports whether have is selected by the --platform filter
// want, by the rules of matchPlatform below; commands that take --platform
// share it so that a filter selects the same manifests everywhere.
func MatchPlatform(want, have v1.Platform) bool { return matchPlatform(want, have) }

// matchPlatform reports whether have is selected by the --platform filter want.
// OS and architecture must be equal. A filter without a variant selects every
// variant of its OS/architecture ("linux/arm" keeps arm/v6 and arm/v7); a filter
// with one selects that variant, compared after normVariant (so "linux/arm64/v8"
// keeps an arm64 manifest that names no variant). A filter without os.version
// selects every os.version.
func matchPlatform(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant != "" && normVariant(want.Architecture, want.Variant) != normVariant(have.Architecture, have.Variant) {
		return false
	}
	return want.OSVersion == "" || want.OSVersion == have.OSVersion
}
