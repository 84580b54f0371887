package termsafe

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"github.com", "github.com"},
		{"Zscaler Root CA", "Zscaler Root CA"},
		{"café 中文 ✓ \ufffd", "café 中文 ✓ \ufffd"},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"bell\a", `bell\x07`},
		{"\u009b31mred", `\u009b31mred`},
		{"a\rb\nc\td", `a\x0db\x0ac\x09d`},
		{"\x00\x7f", `\x00\x7f`},
		{"\xff\xfe", `\xff\xfe`},
		{"\x9b31m", `\x9b31m`},           // a raw CSI byte, not UTF-8
		{"\xe4\xb8", `\xe4\xb8`},         // half a 中
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // a surrogate is not UTF-8
		// Trojan Source: overrides, isolates and marks reorder the line.
		{"abc\u202edcba\u202c", `abc\u202edcba\u202c`},
		{"\u2066\u2067\u2068\u2069\u202a\u202b\u202d", `\u2066\u2067\u2068\u2069\u202a\u202b\u202d`},
		{"\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		{"git\u200bhub.com\ufeff", `git\u200bhub.com\ufeff`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"tag\U000e0041", `tag\U000e0041`},
		// A backslash is doubled only where it would start an escape.
		{`O=Example\, Inc.`, `O=Example\, Inc.`},
		{`C:\Windows`, `C:\Windows`},
		{`\`, `\`},
		{`\x1b`, `\\x1b`},
		{`\u009b \U0001`, `\\u009b \\U0001`},
		{`\\`, `\\\`},
		{"\\\x1b", `\\\x1b`},
		{"\\\u202e", `\\\u202e`},
		{"\\\xff", `\\\xff`},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestStringKeepsSafeText checks that text needing nothing is returned
// as is, without a copy.
func TestStringKeepsSafeText(t *testing.T) {
	s := "CN=Zscaler Root CA, O=Zscaler Inc. — 中文"
	if n := testing.AllocsPerRun(10, func() { _ = String(s) }); n != 0 {
		t.Errorf("String allocates %v times for safe text", n)
	}
}

// unescape reads String's output back: \\, \xHH (a byte), \uHHHH and
// \UHHHHHHHH (a character) are escapes, any other backslash is itself.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[s[i+1]]
		switch {
		case s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case digits > 0:
			if i+2+digits > len(s) {
				return "", fmt.Errorf("short escape at %d", i)
			}
			v, err := strconv.ParseUint(s[i+2:i+2+digits], 16, 32)
			if err != nil {
				return "", fmt.Errorf("escape at %d: %w", i, err)
			}
			if digits == 2 {
				b.WriteByte(byte(v))
			} else {
				b.WriteRune(rune(v))
			}
			i += 1 + digits
		default:
			b.WriteByte('\\')
		}
	}
	return b.String(), nil
}

// checkSafe fails when out holds anything a terminal would act on.
func checkSafe(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("String(%q) = %q: not UTF-8", in, out)
	}
	for _, r := range out {
		if r < ' ' || r == 0x7f || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			t.Fatalf("String(%q) = %q holds %U", in, out, r)
		}
	}
}

// FuzzString checks what String guarantees for any input: the output is
// UTF-8 and holds no C0 or C1 control, DEL, format character (bidi
// overrides among them) or line separator, and it decodes back to the
// input, so distinct inputs give distinct outputs. Text that needs no
// escape is returned unchanged.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "github.com", "\x1b[2J\x1b[H", "\x1b]0;title\x07", "\u009b31m", "\xff",
		"a\tb\nc\r", `O=Example\, Inc.`, `\x1b`, "\\\x1b", `\\`, "\u202egnp.exe", "\U000e0041", "中文 é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := String(in)
		checkSafe(t, in, out)
		back, err := unescape(out)
		if err != nil || back != in {
			t.Fatalf("String(%q) = %q reads back as %q (%v)", in, out, back, err)
		}
		if !strings.ContainsRune(in, '\\') && !strings.ContainsFunc(in, func(r rune) bool { return escaped(r, 2) }) &&
			utf8.ValidString(in) && out != in {
			t.Fatalf("String(%q) = %q changed safe text", in, out)
		}
	})
}

func TestJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`{"a":"b"}` + "\n", `{"a":"b"}` + "\n"},
		{`"café 中文"`, `"café 中文"`},
		{`"` + "\u009b31m" + `"`, `"\u009b31m"`},
		{`"` + "abc\u202edcba" + `"`, `"abc\u202edcba"`},
		{`"` + "\U000e0041" + `"`, `"\udb40\udc41"`},
		{`"` + "\xff" + `"`, `"\ufffd"`},
		{`"\u001b[2J"`, `"\u001b[2J"`},
		{`"` + "\x7f" + `"`, `"\u007f"`},
	} {
		if got := string(JSON([]byte(c.in))); got != c.want {
			t.Errorf("JSON(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzJSON checks that JSON keeps the meaning of what encoding/json
// writes and leaves nothing in it a terminal would act on.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{"", "\x1b[2J", "\u009b31m", "\u202e", "\U000e0041", "\xff", "中文"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		enc, err := json.Marshal(map[string]string{in: in})
		if err != nil {
			t.Fatal(err)
		}
		out := JSON(enc)
		checkSafe(t, string(enc), string(out))
		var a, b map[string]string
		if err := json.Unmarshal(enc, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("JSON(%s) = %s: %v", enc, out, err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("JSON(%s) = %s changes the meaning", enc, out)
		}
	})
}
