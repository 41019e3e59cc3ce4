// Package attest attaches signed in-toto attestations to images and reads
// them back.
//
// Attest signs a predicate given by the caller; FromBuildKit signs the
// unsigned statements BuildKit left in an index's attestation manifests, each
// against the platform manifest it describes; Download returns what is
// attached to an image, signed (Sigstore bundle referrers, cosign's legacy
// `.att` tags) or not (BuildKit's attestation manifests).
//
// Writing and reading live together because they must agree on what an
// attestation is about: a statement whose subject is one manifest digest,
// the platform manifest for per-platform data and never the index, and a
// --platform the image lacks is an input error that lists the platforms it
// has, never a silent fallback to another platform's data. Both resolve each
// image once and work on digests afterwards.
//
// Attest and FromBuildKit read and check everything first — the predicate,
// every reference, every BuildKit statement and its subject — and sign and
// push only when all of it is sound, so a bad input pushes nothing.
package attest
