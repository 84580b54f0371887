package sshprobe

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBanner(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want Banner
	}{
		{"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n", Banner{Line: "SSH-2.0-OpenSSH_9.6p1 Debian-3", Proto: "2.0", Software: "OpenSSH_9.6p1", Comments: "Debian-3"}},
		{"SSH-2.0-babeld-2aa5ef1f\n\x00\x00\x01", Banner{Line: "SSH-2.0-babeld-2aa5ef1f", Proto: "2.0", Software: "babeld-2aa5ef1f"}},
		{"SSH-1.99-Cisco-1.25\r\n", Banner{Line: "SSH-1.99-Cisco-1.25", Proto: "1.99", Software: "Cisco-1.25"}},
		{"Welcome\r\nauthorised use only\r\nSSH-2.0-x\r\n", Banner{Line: "SSH-2.0-x", Proto: "2.0", Software: "x", Preamble: []string{"Welcome", "authorised use only"}}},
		{"HTTP/1.1 403 Forbidden\r\nVia: proxy\r\n\r\n", Banner{Preamble: []string{"HTTP/1.1 403 Forbidden", "Via: proxy", ""}}},
		{"SSH-2.0-cut off", Banner{Preamble: []string{"SSH-2.0-cut off"}}},
		{"", Banner{}},
	} {
		if diff := cmp.Diff(c.want, ParseBanner([]byte(c.in))); diff != "" {
			t.Errorf("ParseBanner(%q) (-want +got):\n%s", c.in, diff)
		}
	}
	long := ParseBanner([]byte(strings.Repeat("x", 1000) + "\n"))
	if long.SSH() || len(long.Preamble) != 1 || len(long.Preamble[0]) != maxLine {
		t.Errorf("a long line: %d lines, first %d bytes", len(long.Preamble), len(long.Preamble[0]))
	}
	many := ParseBanner([]byte(strings.Repeat("x\n", 100) + "SSH-2.0-late\n"))
	if many.SSH() || len(many.Preamble) != maxPreambleLines {
		t.Errorf("many lines: SSH %v, %d lines kept", many.SSH(), len(many.Preamble))
	}
}

// FuzzParseBanner: whatever a peer sends, the parser keeps its bounds and
// finds an identification line only where one is.
func FuzzParseBanner(f *testing.F) {
	for _, s := range []string{"SSH-2.0-OpenSSH_9.6\r\n", "HTTP/1.1 200 OK\r\n\r\n", "\x15\x03\x03\x00\x02\x02\x46", "a\nb\nSSH-2.0-x y z\n", "SSH-\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := ParseBanner(data)
		if len(b.Preamble) > maxPreambleLines {
			t.Fatalf("%d preamble lines", len(b.Preamble))
		}
		for _, l := range append(b.Preamble, b.Line) {
			if len(l) > maxLine {
				t.Fatalf("a line of %d bytes", len(l))
			}
		}
		if b.SSH() {
			if !strings.HasPrefix(b.Line, "SSH-") || !strings.Contains(string(data), b.Line+"\n") && !strings.Contains(string(data), b.Line+"\r\n") && len(b.Line) < maxLine {
				t.Fatalf("identification %q not a line of the input", b.Line)
			}
			if strings.Contains(b.Line, "\n") {
				t.Fatalf("identification %q holds a line feed", b.Line)
			}
		}
		_ = b.Text()
	})
}
