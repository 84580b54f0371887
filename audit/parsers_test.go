package audit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseNpmrc(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOKEN": "tok", "HOME": "/home/u"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name     string
		in       string
		want     []iniEntry
		problems []string
	}{
		{"plain", "strict-ssl=false\nregistry = https://r.lab.example/\n",
			[]iniEntry{{"", "strict-ssl", "false", 1}, {"", "registry", "https://r.lab.example/", 2}}, nil},
		{"comments", "; npm\n# also\n  ; indented\n\nkey=v ; trailing\nk2=a#b\n",
			[]iniEntry{{"", "key", "v", 5}, {"", "k2", "a", 6}}, nil},
		{"escaped comment chars", `k=a\;b\#c\\d\e`,
			[]iniEntry{{"", "k", `a;b#c\d\e`, 1}}, nil},
		{"quotes", "a=\"x ; y\"\nb='z # w'\nc=\"bad\\q\"\nd='\n",
			[]iniEntry{{"", "a", "x ; y", 1}, {"", "b", "z # w", 2}, {"", "c", `"bad\q"`, 3}, {"", "d", "", 4}}, nil},
		{"bare key is true", "strict-ssl\n", []iniEntry{{"", "strict-ssl", "true", 1}}, nil},
		{"empty value", "strict-ssl=\n", []iniEntry{{"", "strict-ssl", "", 1}}, nil},
		{"sections and arrays", "[sec]\nk=v\nca[]=one\n", []iniEntry{{"sec", "k", "v", 2}, {"sec", "ca", "one", 3}}, nil},
		{"not a section", " [x]\n[y]z\n", []iniEntry{{"", "[x]", "true", 1}, {"", "[y]z", "true", 2}}, nil},
		{"env", "//r.lab.example/:_authToken=${TOKEN}\ncafile=${HOME}/ca.pem\nu=${UNSET}\no=${UNSET?}x\ne=\\${TOKEN}\n",
			[]iniEntry{{"", "//r.lab.example/:_authToken", "tok", 1}, {"", "cafile", "/home/u/ca.pem", 2}, {"", "u", "${UNSET}", 3}, {"", "o", "x", 4}, {"", "e", "${TOKEN}", 5}}, nil},
		{"crlf", "a=1\r\nb=2\r\n", []iniEntry{{"", "a", "1", 1}, {"", "b", "2", 2}}, nil},
		{"no key", "=v\n  =w\n", nil, []string{"line 1: no key before =", "line 2: empty key"}},
	}
	for _, tc := range tests {
		got, problems := parseNpmrc([]byte(tc.in), getenv)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: entries (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.problems, problems); diff != "" {
			t.Errorf("%s: problems (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string { return map[string]string{"A": "x"}[k] }
	for in, want := range map[string]string{
		"${A}":        "x",
		`\${A}`:       "${A}",
		`\\${A}`:      `\x`,
		`\\\${A}`:     `\${A}`,
		"${B}":        "${B}",
		"${B?}":       "",
		"${A":         "${A",
		"${}${A}":     "${}x",
		"a${A}b${A}c": "axbxc",
		"${A${A}}":    "${Ax}",
	} {
		if got := expandEnv(in, getenv); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePipConf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		want     []iniEntry
		problems []string
	}{
		{"basic", "[global]\nindex-url = https://p.lab.example/simple\ntimeout: 60\n",
			[]iniEntry{{"global", "index-url", "https://p.lab.example/simple", 2}, {"global", "timeout", "60", 3}}, nil},
		{"continuation", "[global]\ntrusted-host = a.lab.example\n    b.lab.example\n\n\tc.lab.example\nx = 1\n",
			[]iniEntry{{"global", "trusted-host", "a.lab.example\nb.lab.example\n\nc.lab.example", 2}, {"global", "x", "1", 6}}, nil},
		{"value on next line", "[global]\ntrusted-host =\n  a.lab.example\n",
			[]iniEntry{{"global", "trusted-host", "\na.lab.example", 2}}, nil},
		{"comments are full lines only", "[install]\n# c\n; c\ncert = /p#q ; r\n",
			[]iniEntry{{"install", "cert", "/p#q ; r", 4}}, nil},
		{"keys normalised", "[global]\nTrusted_Host = h.lab.example\n--index-url=u\n",
			[]iniEntry{{"global", "trusted-host", "h.lab.example", 2}, {"global", "index-url", "u", 3}}, nil},
		{"indented comment inside a value", "[global]\ntrusted-host = a\n  # not b\n  c\n",
			[]iniEntry{{"global", "trusted-host", "a\nc", 2}}, nil},
		{"missing section", "index-url = u\n[global]\nx = 1\n", nil,
			[]string{"line 1: key before any [section]; pip cannot read the file"}},
		{"duplicates and junk", "[global]\nx = 1\nx = 2\njunk\n[global]\n",
			[]iniEntry{{"global", "x", "1", 2}, {"global", "x", "2", 3}},
			[]string{"line 3: x already set in [global]", "line 4: not a section, a key = value or a comment", "line 5: section [global] already defined"}},
		{"empty key", "[global]\n= v\n", nil, []string{"line 2: empty key"}},
	}
	for _, tc := range tests {
		got, problems := parsePipConf([]byte(tc.in))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: entries (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.problems, problems); diff != "" {
			t.Errorf("%s: problems (-want +got):\n%s", tc.name, diff)
		}
	}
}

// gitSamples are configs whose parse must agree with git's own.
var gitSamples = []string{
	"[http]\n\tsslVerify = false\n",
	"[http \"http://git.lab.example/\"]\n\tsslVerify = false\n[url \"http://git.lab.example/\"]\n\tinsteadOf = https://git.lab.example/\n",
	"[HTTP]\n\tSSLVerify\n[Url \"Http://Mixed.lab.example/\"]\n\tInsteadOf = X\n",
	"[section.Sub]\nkey = v\n",
	"[a]\nk = \"  quoted ; not a comment  \" # comment\nl = one \\\n two\nm = tab\\there\\\\ \\\"q\\\"\nn =   spaced   out   \n",
	"[a] k = same line\n[b \"sub \\\"q\\\" \\\\ x\"]\n\tk=v\n",
	"; comment\n# comment\n[a]\n\tk = 1 ; c\n\tk = 2\n\tempty =\n",
	"[a]\nk = \"partly\"quoted\" \"rest\n",
}

func TestParseGitConfig(t *testing.T) {
	t.Parallel()
	got, err := parseGitConfig([]byte(gitSamples[4]))
	want := []gitEntry{
		{"a.k", "  quoted ; not a comment  ", true, 2},
		{"a.l", "one  two", true, 3},
		{"a.m", "tab\there\\ \"q\"", true, 5},
		{"a.n", "spaced   out", true, 6},
	}
	if err != nil || !cmp.Equal(want, got, cmp.AllowUnexported(gitEntry{})) {
		t.Errorf("parseGitConfig = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []struct{ in, err string }{
		{"[a\nk=v\n", "line 1: bad config line: unterminated section header"},
		{"k = v\n", "line 1: bad config line: variable outside a section"},
		{"[a]\nk = \"open\n", "line 2: bad config line: unterminated quoted value"},
		{"[a]\nk = \\q\n", "line 2: bad config line: bad escape \\q"},
		{"[a]\n\n\n!\n", "line 4: bad config line: unexpected '!'"},
	} {
		if _, err := parseGitConfig([]byte(bad.in)); err == nil || err.Error() != bad.err {
			t.Errorf("parseGitConfig(%q) error = %v, want %q", bad.in, err, bad.err)
		}
	}
}

// TestParseGitConfigMatchesGit reads each sample with the real git and
// with parseGitConfig: the keys and values must be the same.
func TestParseGitConfigMatchesGit(t *testing.T) {
	t.Parallel()
	needBinary(t, "git")
	dir := t.TempDir()
	for i, sample := range gitSamples {
		path := filepath.Join(dir, "config")
		must(t, os.WriteFile(path, []byte(sample), 0o644))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "git", "config", "--file", path, "--list", "-z").Output()
		cancel()
		must(t, err)
		var want []string
		for _, rec := range bytes.Split(bytes.TrimSuffix(out, []byte{0}), []byte{0}) {
			want = append(want, string(rec))
		}
		entries, err := parseGitConfig([]byte(sample))
		must(t, err)
		var got []string
		for _, e := range entries {
			if e.hasValue {
				got = append(got, e.key+"\n"+e.value)
			} else {
				got = append(got, e.key)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sample %d (-git +ours):\n%s", i, diff)
		}
	}
}

func TestBroadPatterns(t *testing.T) {
	t.Parallel()
	for list, want := range map[string][]string{
		"*":                                  {"*"},
		"github.com":                         {"github.com"},
		"github.com/*":                       {"github.com/*"},
		"*.com":                              {"*.com"},
		"golang.org/x":                       {"golang.org/x"},
		"git.corp.example,github.com/myorg":  nil,
		"github.com/myorg/*,*.corp.example":  nil,
		" gitlab.com , git.corp.example/x/y": {"gitlab.com"},
		"":                                   nil,
	} {
		if got := broadPatterns(list); !cmp.Equal(want, got) {
			t.Errorf("broadPatterns(%q) = %q, want %q", list, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://u:p@proxy.lab.example:3128":        "http://REDACTED@proxy.lab.example:3128",
		"https://token@git.lab.example/x@y":        "https://REDACTED@git.lab.example/x@y",
		"http://u:p@w@h.lab.example/":              "http://REDACTED@h.lab.example/",
		"a http://u:p@h1.lab.example b https://h2": "a http://REDACTED@h1.lab.example b https://h2",
		"https://plain.lab.example/path":           "https://plain.lab.example/path",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactProxy("u:p@proxy.lab.example:3128"); got != "REDACTED@proxy.lab.example:3128" {
		t.Errorf("redactProxy = %q", got)
	}
	if !hasCredentials("http://u@proxy.lab.example") || hasCredentials("http://proxy.lab.example:3128") {
		t.Error("hasCredentials is wrong")
	}
}

func TestJSONLines(t *testing.T) {
	t.Parallel()
	in := `{
  "a": 1,
  "list": [
    "x",
    {"k": "v"}
  ],
  "obj": {
    "inner": ["y"]
  }
}`
	want := map[string]int{"a": 2, "list": 3, "list[0]": 4, "list[1]": 5, "list[1].k": 5, "obj": 7, "obj.inner": 8, "obj.inner[0]": 8}
	if diff := cmp.Diff(want, jsonLines([]byte(in))); diff != "" {
		t.Errorf("jsonLines (-want +got):\n%s", diff)
	}
}

func TestFlattenTOML(t *testing.T) {
	t.Parallel()
	got, err := flattenTOML([]byte(`top = "t"
a.b = true
[http]
check-revoke = false
[registries."my.reg"]
index = "sparse+https://r.lab.example/"
[[arr]]
x = ["p", "q", 1]
[registries]
inline = { index = 'https://i.lab.example/', n = 1 }
`))
	must(t, err)
	var lines []string
	for _, e := range got {
		lines = append(lines, strings.Join(e.path, "|")+"="+e.str+"@"+strconv.Itoa(e.line))
	}
	want := []string{"top=t@1", "a|b=true@2", "http|check-revoke=false@4", "registries|my.reg|index=sparse+https://r.lab.example/@6",
		"arr|x=p q@8", "registries|inline|index=https://i.lab.example/@10", "registries|inline|n=1@10"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("flattenTOML (-want +got):\n%s", diff)
	}
	if _, err := flattenTOML([]byte("a = 1\na = 2\n")); err == nil {
		t.Error("a duplicate key parsed")
	}
}

// checkLines checks what every reader must guarantee: entries point at
// real lines, in order.
func checkLines(t *testing.T, data []byte, lines []int) {
	n := bytes.Count(data, []byte("\n")) + 1
	last := 0
	for _, l := range lines {
		if l < 1 || l > n || l < last {
			t.Fatalf("line %d out of order or range (1..%d, after %d)", l, n, last)
		}
		last = l
	}
}

func FuzzNpmrc(f *testing.F) {
	for _, s := range []string{
		"strict-ssl=false\nregistry=http://r.lab.example/\n",
		"; c\n[s]\nk='v'\nk2=\"a\\\"b\" ; c\n//h/:_authToken=${T}\n",
		"ca[]=${A?}\\${B}\r\n=x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := parseNpmrc(data, func(k string) string {
			if k == "T" {
				return "${T}" // expansion must not loop
			}
			return ""
		})
		var lines []int
		for _, e := range entries {
			if e.Key == "" {
				t.Fatal("empty key")
			}
			lines = append(lines, e.Line)
		}
		checkLines(t, data, lines)
	})
}

func FuzzPipConf(f *testing.F) {
	for _, s := range []string{
		"[global]\ntrusted-host = a\n  b\nindex-url: http://p.lab.example/\n",
		"x=1\n[global]\n",
		"[a]\n[a]\nk=1\nk=2\n\n  c\n; d\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := parsePipConf(data)
		var lines []int
		for _, e := range entries {
			if e.Key == "" || e.Key != strings.ToLower(e.Key) || strings.Contains(e.Key, "_") {
				t.Fatalf("key %q not normalised", e.Key)
			}
			lines = append(lines, e.Line)
		}
		checkLines(t, data, lines)
	})
}

func FuzzGitConfig(f *testing.F) {
	for _, s := range gitSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _ := parseGitConfig(data)
		var lines []int
		for _, e := range entries {
			if !strings.Contains(e.key, ".") || !utf8.ValidString(e.key) && utf8.Valid(data) {
				t.Fatalf("bad key %q", e.key)
			}
			lines = append(lines, e.line)
		}
		checkLines(t, data, lines)
	})
}
