package plainhttp

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/mitmwatch/mitmwatch/detector"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want detector.HTTPAnswer
	}{
		{"block page", "HTTP/1.1 403 Forbidden\r\nVia: 1.1 filter\r\nX-BlueCoat-Via: abc\r\nContent-Length: 50\r\n\r\n<html><title>Access\r\nDenied</title>blocked</html>",
			detector.HTTPAnswer{Status: 403, Title: "Access Denied", ProxyHeaders: []string{"Via: 1.1 filter", "X-Bluecoat-Via: abc"},
				BodySnippet: "<html><title>Access Denied</title>blocked</html>"}},
		{"redirect", "HTTP/1.0 302 Found\r\nLocation: http://portal.lab.example/login\r\n\r\n",
			detector.HTTPAnswer{Status: 302, Location: "http://portal.lab.example/login"}},
		{"header with control byte", "HTTP/1.0 302 Found\r\nLocation: http://a/\x01\r\n\r\n",
			detector.HTTPAnswer{BodySnippet: "HTTP/1.0 302 Found Location: http://a/"}},
		{"garbage", "\x16\x03\x01\x00\x05hello\xff", detector.HTTPAnswer{BodySnippet: "hello?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse([]byte(tc.in))
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParse feeds arbitrary bytes, as a box on the TLS port might
// send, to the answer parser: it must not panic and must keep its output
// printable and bounded.
func FuzzParse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 302 Found\r\nLocation: http://portal.lab.example/\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("\x15\x03\x03\x00\x02\x02\x28"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a := Parse(data)
		for _, s := range append([]string{a.Location, a.Title, a.BodySnippet}, a.ProxyHeaders...) {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("unsafe text %q", s)
			}
		}
		if len(a.BodySnippet) > MaxSnippet || len(a.Title) > MaxSnippet {
			t.Fatalf("unbounded text: %d", len(a.BodySnippet))
		}
	})
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"a\x00b\r\nc  d": "a b c d",
		"\xff\xfeok":     "?ok",
		"  spaced  ":     "spaced",
	} {
		if got := sanitize(in, 100); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitize("ééééé", 4); got != "éé" {
		t.Errorf("truncation = %q", got)
	}
}
