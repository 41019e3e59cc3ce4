package buildkit

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// subjectName is the name BuildKit gives a statement's subject: the package
// URL of the pushed tag with the platform as a qualifier
// (util/purl.RefToPURL), e.g.
// pkg:docker/127.0.0.1%3A5055/example/fleet@v0.1.0-linux-amd64?platform=linux%2Famd64.
// Docker Hub names are familiar (no registry, no library/).
func subjectName(ref string, p v1.Platform) (string, error) {
	t, err := parseTag(ref)
	if err != nil {
		return "", err
	}
	path := t.Context().RepositoryStr()
	if reg := t.Context().RegistryStr(); reg != name.DefaultRegistry {
		path = reg + "/" + path
	} else if rest, ok := strings.CutPrefix(path, "library/"); ok && !strings.Contains(rest, "/") {
		path = rest
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = purlEscape(s)
	}
	return "pkg:docker/" + strings.Join(segs, "/") + "@" + purlEscape(t.TagStr()) +
		"?platform=" + purlEscape(platformString(p)), nil
}

// purlEscape percent-encodes everything but RFC 3986 unreserved characters,
// which is how the fixtures' purls encode ':' (%3A) and '/' (%2F).
func purlEscape(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
		}
	}
	return b.String()
}
