package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// asIndent is what appendIndented must equal: json.Indent of the compact
// form.
func asIndent(t testing.TB, compact []byte) []byte {
	t.Helper()
	var want bytes.Buffer
	if err := json.Indent(&want, compact, "", "  "); err != nil {
		t.Fatalf("json.Indent(%q): %v", compact, err)
	}
	return want.Bytes()
}

func TestIndentedAsJSONIndent(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `""`, `0`, `null`, `{"a":{}}`, `{"a":[]}`, `[[],[{}],{"":[]}]`,
		`{"a":"\"}{][,:","b":["\\","\\\"",":"],"c":-1.5e+3}`,
		`{"u":"\u003c\u2028\ud83d\ude00","t":true,"f":false,"n":null}`,
		`[1,[2,[3,[4]]],{"k":{"k":{"k":"v"}}}]`,
	}
	// And every JSON document the report's tests hold, compacted.
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(data))
	}
	if len(files) == 0 {
		t.Fatal("no JSON documents in testdata")
	}
	for _, c := range cases {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(c)); err != nil {
			t.Fatalf("%.40q: %v", c, err)
		}
		if got, want := appendIndented(nil, compact.Bytes()), asIndent(t, compact.Bytes()); !bytes.Equal(got, want) {
			t.Errorf("%.60q:\ngot  %q\nwant %q", c, got, want)
		}
	}
}

// FuzzIndented holds appendIndented to json.Indent on every valid
// document, compacted as encoding/json marshals.
func FuzzIndented(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":""}],"c":{}}`, `["\\\"",[]]`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var compact bytes.Buffer
		if json.Compact(&compact, data) != nil {
			return
		}
		if got, want := appendIndented(nil, compact.Bytes()), asIndent(t, compact.Bytes()); !bytes.Equal(got, want) {
			t.Fatalf("%q:\ngot  %q\nwant %q", compact.Bytes(), got, want)
		}
	})
}

func BenchmarkIndent(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "report.json"))
	if err != nil {
		b.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		b.Fatal(err)
	}
	src := compact.Bytes()
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			if err := json.Indent(&out, src, "", "  "); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendIndented", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var out []byte
		for b.Loop() {
			out = appendIndented(out[:0], src)
		}
	})
}
