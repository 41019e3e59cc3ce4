// Package attestation builds and reads the in-toto statements seal signs:
// statements and their subjects, the table of predicate types, predicate
// validation before signing, SLSA provenance (generated from the CI
// environment, converted from v0.2 to v1), and the unsigned statements that
// BuildKit stores in an index's attestation manifests.
//
// Everything here is pure: no registry access, no signing. Readers are strict
// (exact JSON keys, no duplicate keys, size caps) because what they accept is
// about to be signed or trusted, and two parsers that disagree on a document
// are a way to get one thing verified and another one used.
package attestation
