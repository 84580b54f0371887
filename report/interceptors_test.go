package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/grade"
)

// graded is the interceptor behind the golden results' first target,
// graded F by fixed checks; one detail carries an escape sequence, as an
// error page may.
func graded(t *testing.T) []grade.Interceptor {
	found := grade.Find(results(t))
	if len(found) != 1 {
		t.Fatalf("found %d interceptors in the golden results, want 1", len(found))
	}
	checks := []grade.Check{
		{Name: "upstream-expired", Result: grade.ReSigned, Detail: "the interceptor forged a leaf this machine trusts for a host whose own certificate is broken (HTTP 200)"},
		{Name: "upstream-wrong-host", Result: grade.Blocked, Detail: "its own error: HTTP 502 \"\x1b[2JBad Gateway\""},
		{Name: grade.CheckTLS10, Result: grade.Refused, Detail: "offered only TLS 1.0 to github.com: eof_error"},
		{Name: grade.CheckKeyReuse, Result: grade.Weak, Detail: "the CA's own key behind the forged leaves of 3 hosts"},
	}
	return []grade.Interceptor{{Found: found[0], Grade: grade.Rate(checks), Checks: checks}}
}

func TestInterceptorsJSONGolden(t *testing.T) {
	doc := Build(results(t))
	doc.Interceptors = Interceptors(graded(t))
	var buf bytes.Buffer
	if err := doc.Write(&buf); err != nil {
		t.Fatal(err)
	}
	// Only the new list is golden here; the targets are report.json's.
	var got struct {
		Interceptors json.RawMessage `json:"interceptors"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, got.Interceptors, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	golden(t, "interceptors.json", indented.Bytes())

	// The contract of the issue: per interceptor, these keys.
	var list []map[string]any
	if err := json.Unmarshal(got.Interceptors, &list); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ca_spki_sha256", "path", "product", "targets", "grade", "checks"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("interceptor lacks %q: %v", k, list[0])
		}
	}
	check := list[0]["checks"].([]any)[0].(map[string]any)
	if check["check"] != "upstream-expired" || check["result"] != "re-signed" || check["detail"] == "" {
		t.Errorf("first check %v", check)
	}

	// Nothing graded: no key at all.
	buf.Reset()
	if err := Build(results(t)).Write(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `"interceptors"`) {
		t.Error("a report with nothing graded names interceptors")
	}
}

func TestInterceptorTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := InterceptorTable(&buf, graded(t), false); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("\x1b")) {
		t.Error("an escape sequence from a detail reached the table")
	}
	golden(t, "interceptors.txt", buf.Bytes())

	var coloured bytes.Buffer
	if err := InterceptorTable(&coloured, graded(t), true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(coloured.Bytes(), []byte(bold+red+"F"+reset)) {
		t.Error("grade F is not painted red")
	}
	buf.Reset()
	if err := InterceptorTable(&buf, nil, false); err != nil || buf.Len() != 0 {
		t.Errorf("nothing graded: %q, %v", buf.String(), err)
	}
}
