package attestation
import ("testing";"time";"strings";"fmt")
func TestZZPerf(t *testing.T){
	var b strings.Builder
	b.WriteString(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://spdx.dev/Document","subject":[{"name":"a","digest":{"sha256":"`+hexA+`"}}],"predicate":{"spdxVersion":"SPDX-2.3","packages":[`)
	for i:=0; b.Len() < 15<<20; i++ { if i>0 {b.WriteString(",")}; fmt.Fprintf(&b, `{"SPDXID":"SPDXRef-Package-%d","name":"pkg%d","versionInfo":"1.2.%d","licenseConcluded":"MIT","downloadLocation":"NOASSERTION"}`, i,i,i) }
	b.WriteString("]}}")
	data := []byte(b.String())
	s := time.Now(); st, err := ParseStatement(data); d1 := time.Since(s)
	if err != nil { t.Fatal(err) }
	s = time.Now(); err = ValidatePredicate(st.PredicateType, st.Predicate); d2 := time.Since(s)
	t.Logf("%d MiB: ParseStatement %v, ValidatePredicate %v (%v)", len(data)>>20, d1, d2, err)
}
