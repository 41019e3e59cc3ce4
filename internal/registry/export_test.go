package registry

import (
	"net/http"
	"net/http/httptest"
)

// SmallBlobLimit is smallBlobLimit, for the tests.
const SmallBlobLimit = smallBlobLimit

// Handlers returns the server's handler and Distribution's own, behind it.
func (s *Server) Handlers() (front, distribution http.Handler) { return s.srv.Handler, s.app }

// AnswersItself reports whether the server answers r without Distribution.
func (s *Server) AnswersItself(r *http.Request) bool {
	f := s.srv.Handler.(*fastReads)
	w := httptest.NewRecorder()
	return f.serveBlob(w, r) || f.serveManifest(w, r)
}
