package policy

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/seal-dev/seal/pkg/fault"
)

// Image is a parsed image reference, normalised the way Docker does it
// (nginx → index.docker.io/library/nginx). Its fields are the template
// variables of a rule and, in lower case and with the rule's vars applied,
// the CEL variable `image`.
type Image struct {
	Registry   string `json:"registry"`   // index.docker.io, ghcr.io, 127.0.0.1:5000
	Repository string `json:"repository"` // path without the registry: example/server
	Name       string `json:"name"`       // last path segment: server
	Org        string `json:"org"`        // path without the last segment: example
	Tag        string `json:"tag"`        // empty for a digest-only reference
	Digest     string `json:"digest"`     // from the reference, or set by the caller once resolved
}

// ParseImage parses an image reference. A reference with neither tag nor
// digest names the tag "latest", as everywhere else.
func ParseImage(ref string) (Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Image{}, fault.Inputf("image %q: %w", ref, err)
	}
	repo := r.Context().RepositoryStr()
	img := Image{
		Registry:   r.Context().RegistryStr(),
		Repository: repo,
		Name:       repo[strings.LastIndexByte(repo, '/')+1:],
	}
	if i := strings.LastIndexByte(repo, '/'); i >= 0 {
		img.Org = repo[:i]
	}
	switch r := r.(type) {
	case name.Tag:
		img.Tag = r.TagStr()
	case name.Digest:
		img.Digest = r.DigestStr()
		// go-containerregistry drops the tag of host/repo:tag@sha256:…;
		// keep it, since the policy may use it.
		base := ref[:strings.IndexByte(ref, '@')]
		if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
			img.Tag = base[i+1:]
		}
	}
	return img, nil
}

// String is the normalised reference: registry/repository[:tag][@digest].
func (i Image) String() string {
	s := i.Registry + "/" + i.Repository
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// segments is what image patterns match: the registry, then the path.
func (i Image) segments() []string {
	return append([]string{strings.ToLower(i.Registry)}, strings.Split(i.Repository, "/")...)
}

// templateData is what `{{ .X }}` sees before vars are applied. The tag is
// absent rather than empty for a digest-only reference, so that a template
// using it fails instead of producing an identity with an empty tag.
func (i Image) templateData() map[string]string {
	d := map[string]string{
		"Registry":   i.Registry,
		"Repository": i.Repository,
		"Name":       i.Name,
		"Org":        i.Org,
	}
	if i.Tag != "" {
		d["Tag"] = i.Tag
	}
	return d
}
