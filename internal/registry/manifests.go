package registry

import (
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/distribution/distribution/v3/manifest/manifestlist"
	"github.com/distribution/distribution/v3/manifest/ocischema"
	"github.com/distribution/distribution/v3/manifest/schema2"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// A manifest GET through Distribution's handlers also builds a "manifest
// pulled" notification (it parses the manifest a second time and builds its
// URLs) that no endpoint here receives, and pays for routing, request
// loggers and a per-request repository: about half of the registry's CPU
// when a release of 100 images is verified, where manifests, fallback tags
// and tags are 70 % of the requests. So a GET or HEAD of a manifest that
// Distribution would answer with the stored bytes as they are is answered
// here, through Distribution's storage API, with its headers; conditional
// requests, old clients whose Accept header needs a manifest list rewritten,
// refusals and every failure go to Distribution.

// Distribution's kinds of stored manifest, as its manifest handler tells
// them apart.
const (
	kindSchema2 = iota
	kindManifestList
	kindOCI
	kindOCIIndex
)

// serveManifest answers r, a GET or HEAD, if it is a plain success for a
// manifest, and reports whether it did; it writes nothing otherwise.
func (s *fastReads) serveManifest(w http.ResponseWriter, r *http.Request) bool {
	if len(r.Header["If-None-Match"]) > 0 {
		return false
	}
	repo, tag, dgst, ok := manifestPath(r.URL.Path)
	if !ok {
		return false
	}
	rp, ok := s.repository(r, repo)
	if !ok {
		return false
	}
	ctx := r.Context()
	if tag != "" {
		desc, err := rp.Tags(ctx).Get(ctx, tag)
		if err != nil {
			return false
		}
		dgst = desc.Digest
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return false
	}
	m, err := ms.Get(ctx, dgst)
	if err != nil {
		return false
	}

	// The same decisions as Distribution's manifest handler (GetManifest),
	// type test for type test, so that what is served here is what it
	// would serve.
	supports := acceptedKinds(r)
	kind := kindSchema2
	list, isList := m.(*manifestlist.DeserializedManifestList)
	if _, isOCI := m.(*ocischema.DeserializedManifest); isOCI {
		kind = kindOCI
	} else if isList {
		switch list.MediaType {
		case manifestlist.MediaTypeManifestList:
			kind = kindManifestList
		case v1.MediaTypeImageIndex:
			kind = kindOCIIndex
		}
	}
	switch {
	case kind == kindOCI && !supports[kindOCI],
		kind == kindOCIIndex && !supports[kindOCIIndex],
		// Distribution rewrites this one for old clients.
		tag != "" && kind == kindManifestList && !supports[kindManifestList]:
		return false
	}
	ct, p, err := m.Payload()
	if err != nil {
		return false
	}
	h := w.Header()
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Content-Type", ct)
	h.Set("Content-Length", fmt.Sprint(len(p)))
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Etag", fmt.Sprintf(`"%s"`, dgst))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(p)
	}
	return true
}

// acceptedKinds parses the Accept headers as Distribution does.
func acceptedKinds(r *http.Request) [4]bool {
	var supports [4]bool
	for _, accept := range r.Header["Accept"] {
		for mt := range strings.SplitSeq(accept, ",") {
			mt, _, err := mime.ParseMediaType(mt)
			if err != nil {
				continue
			}
			switch mt {
			case schema2.MediaTypeManifest:
				supports[kindSchema2] = true
			case manifestlist.MediaTypeManifestList:
				supports[kindManifestList] = true
			case v1.MediaTypeImageManifest:
				supports[kindOCI] = true
			case v1.MediaTypeImageIndex:
				supports[kindOCIIndex] = true
			}
		}
	}
	return supports
}

// manifestPath parses /v2/<name>/manifests/<tag or digest>.
func manifestPath(p string) (repo reference.Named, tag string, dgst digest.Digest, ok bool) {
	repo, id, ok := splitPath(p, "manifests")
	if !ok {
		return nil, "", "", false
	}
	if d, err := digest.Parse(id); err == nil {
		return repo, "", d, true
	}
	if !anchoredTag.MatchString(id) {
		return nil, "", "", false
	}
	return repo, id, "", true
}

var anchoredTag = regexp.MustCompile(`^` + reference.TagRegexp.String() + `$`)
