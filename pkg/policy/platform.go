package policy

import (
	"fmt"
	"strings"
)

// Platform is os/architecture[/variant].
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// ParsePlatform parses os/arch or os/arch/variant.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimFunc(p, func(r rune) bool {
			return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		}) != "" {
			return Platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Matches reports whether a manifest's platform m is this one. A platform
// written without a variant accepts any variant.
func (p Platform) Matches(m Platform) bool {
	return p.OS == m.OS && p.Architecture == m.Architecture && (p.Variant == "" || p.Variant == m.Variant)
}

// Var is the CEL variable `platform`.
func (p Platform) Var() map[string]any {
	return map[string]any{"os": p.OS, "architecture": p.Architecture, "variant": p.Variant}
}

// PlatformMode says which manifests of an image need an attestation.
type PlatformMode string

const (
	// PlatformsDefault: one on the index, or one on every platform manifest.
	PlatformsDefault PlatformMode = "default"
	// PlatformsAll: one on every platform manifest.
	PlatformsAll PlatformMode = "all"
	// PlatformsIndex: one on the index (or the image, when it is not an index).
	PlatformsIndex PlatformMode = "index"
	// PlatformsList: one on each listed platform's manifest; the image must have them all.
	PlatformsList PlatformMode = "list"
)

// Platforms is an attestation's `platforms:`.
type Platforms struct {
	Mode PlatformMode `json:"mode"`
	List []Platform   `json:"list,omitempty"` // for PlatformsList
}
