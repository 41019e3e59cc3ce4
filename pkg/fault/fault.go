// Package fault classifies errors by who has to act on them, which is what
// seal's exit codes report: the input was wrong (2), a check failed (1), or
// the environment failed (3). Packages wrap their errors with a kind at the
// place that knows it; the CLI maps the kind to an exit code.
package fault

import (
	"errors"
	"fmt"
)

// Kind is the class of a failure.
type Kind int

const (
	// Unknown is an error that nobody classified; the CLI treats it as operational.
	Unknown Kind = iota
	// Verification: a signature, attestation or policy check did not pass (exit 1).
	Verification
	// Input: bad usage or bad input — malformed reference, file, manifest or policy,
	// a reference that does not exist, conflicting sources (exit 2).
	Input
	// Operational: registry unreachable after retries, auth refused, timeout (exit 3).
	Operational
)

func (k Kind) String() string {
	switch k {
	case Verification:
		return "verification"
	case Input:
		return "input"
	case Operational:
		return "operational"
	}
	return "unknown"
}

// ExitCode is the process exit code CLI.md assigns to the kind.
func (k Kind) ExitCode() int {
	switch k {
	case Verification:
		return 1
	case Input:
		return 2
	default:
		return 3
	}
}

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// Wrap marks err with kind. A nil err stays nil. The outermost kind wins in
// KindOf, so a caller that knows better can reclassify.
func Wrap(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// Inputf formats an input error (exit 2).
func Inputf(format string, args ...any) error {
	return Wrap(Input, fmt.Errorf(format, args...))
}

// Verificationf formats a verification failure (exit 1).
func Verificationf(format string, args ...any) error {
	return Wrap(Verification, fmt.Errorf(format, args...))
}

// Operationalf formats an operational failure (exit 3).
func Operationalf(format string, args ...any) error {
	return Wrap(Operational, fmt.Errorf(format, args...))
}

// KindOf returns the outermost kind found in err's chain, or Unknown.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return Unknown
}
