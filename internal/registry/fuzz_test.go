package registry

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// The fast reads parse request paths before Distribution sees them: a path
// they accept must name a valid repository and a valid digest or tag, and
// none may panic them.
func FuzzFastReadPaths(f *testing.F) {
	for _, p := range []string{
		"/v2/app/blobs/sha256:" + strings.Repeat("a", 64),
		"/v2/a/b/c/manifests/v1.0.0",
		"/v2/app/manifests/sha256:" + strings.Repeat("0", 64),
		"/v2/app/blobs/uploads/1234",
		"/v2/blobs/blobs/blobs/sha256:" + strings.Repeat("b", 64),
		"/v2/../etc/manifests/x",
		"/v2//app/manifests/-bad",
		"/v2/APP/manifests/latest",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if repo, dgst, ok := blobPath(p); ok {
			if _, err := reference.WithName(repo.Name()); err != nil || dgst.Validate() != nil {
				t.Fatalf("blob path %q accepted as %q %q", p, repo, dgst)
			}
		}
		if repo, tag, dgst, ok := manifestPath(p); ok {
			if _, err := reference.WithName(repo.Name()); err != nil {
				t.Fatalf("manifest path %q accepted with repository %q", p, repo)
			}
			if (tag == "") == (dgst == "") || (dgst != "" && dgst.Validate() != nil) || (tag != "" && !anchoredTag.MatchString(tag)) {
				t.Fatalf("manifest path %q accepted as tag %q digest %q", p, tag, dgst)
			}
		}
	})
}
