package oci

// IsNotFound reports whether err is the registry saying it has no such tag,
// manifest, blob or repository — for callers to whom absence is an answer
// (a signature tag nobody wrote yet), not a failure.
func IsNotFound(err error) bool { return isNotFound(err) }
