package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
	"github.com/seal-dev/seal/pkg/fault"
)

// celCostLimit bounds one condition's evaluation. Conditions run over
// predicates from the registry, which an attacker may have made large.
const celCostLimit = 1_000_000

// The CEL variables of a condition. predicate and statement are the
// decoded JSON of the in-toto statement; the others are string maps.
const (
	VarPredicate   = "predicate"
	VarStatement   = "statement"
	VarImage       = "image"
	VarPlatform    = "platform"
	VarCertificate = "certificate"
	// VarVars holds the rule's template variables after `vars` are applied
	// (Registry, Repository, Name, Org, Tag and every var), so a condition
	// can use a custom var: "https://github.com/" + vars.Owner.
	VarVars = "vars"
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	strs := cel.MapType(cel.StringType, cel.StringType)
	return cel.NewEnv(
		cel.Variable(VarPredicate, cel.DynType),
		cel.Variable(VarStatement, cel.DynType),
		cel.Variable(VarImage, strs),
		cel.Variable(VarPlatform, strs),
		cel.Variable(VarCertificate, strs),
		cel.Variable(VarVars, strs),
		cel.OptionalTypes(),
		ext.Strings(),
	)
})

// compileCondition checks a condition and returns its program. It must be
// a bool expression: a condition that yields anything else is a policy bug,
// found at load rather than at the first verification.
func compileCondition(src string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, fmt.Errorf("bad CEL: %s", strings.Join(msgs, "; "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("bad CEL: condition is %s, not bool", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, fmt.Errorf("bad CEL: %w", err)
	}
	return prg, nil
}

// HasCondition reports whether the attestation has a condition to Eval, so
// that a caller can spare decoding the variables of one that has none.
func (a *Attestation) HasCondition() bool { return a.program != nil }

// Eval runs the attestation's condition. Pass predicate and statement (the
// decoded JSON), platform (Platform.Var) and certificate (CertificateVar).
// image and vars come from the rendered rule: image is the reference with
// the rule's vars applied (name is "server" under vars {Name: server}) and
// the digest of the Image given to Render, so set Image.Digest to the
// resolved digest before matching. A value the caller passes for either
// takes precedence. No condition is true. An error — a missing field, the
// cost limit — means the attestation does not count.
func (a *Attestation) Eval(vars map[string]any) (bool, error) {
	if a.program == nil {
		return true, nil
	}
	act := make(map[string]any, len(vars)+1)
	for k, v := range vars {
		act[k] = v
	}
	if _, ok := act[VarVars]; !ok {
		act[VarVars] = a.vars
	}
	if _, ok := act[VarImage]; !ok {
		act[VarImage] = a.image
	}
	out, _, err := a.program.Eval(act)
	if err != nil {
		return false, fault.Verificationf("condition of %s: %w", a.PredicateType, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fault.Wrap(fault.Verification, errors.New("condition did not yield a bool"))
	}
	return b, nil
}
