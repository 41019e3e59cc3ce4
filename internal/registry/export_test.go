package registry

import "net/http"

// SmallBlobLimit is smallBlobLimit, for the tests.
const SmallBlobLimit = smallBlobLimit

// Handlers returns the server's handler and Distribution's own, behind it.
func (s *Server) Handlers() (front, distribution http.Handler) { return s.srv.Handler, s.app }
