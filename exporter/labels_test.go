package exporter

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Zscaler", "Zscaler"},
		{"  two\nlines\r\n\tand tabs ", "two lines and tabs"},
		{"bad\xffbyte", "bad\uFFFDbyte"},
		{"rtl\u202eoverride\u200b", "rtloverride"},
		{"nul\x00bell\x07", "nulbell"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 61) + "…"},
		// A cut never splits a rune: "é" is 2 bytes, 61 is odd.
		{strings.Repeat("é", 40), strings.Repeat("é", 30) + "…"},
	} {
		if got := labelValue(tc.in); got != tc.want {
			t.Errorf("labelValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIssuerLabel(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":       "ip-address",
		"2001:db8::1":     "ip-address",
		"[2001:db8::1]":   "ip-address",
		" 192.0.2.1\n":    "ip-address",
		"Fortinet CA":     "Fortinet CA",
		"192.0.2.1 CA":    "192.0.2.1 CA",
		"":                "",
		"R11":             "R11",
		"fe80::1%eth0":    "ip-address",
		"ca.corp.example": "ca.corp.example",
	} {
		if got := issuerLabel(in); got != want {
			t.Errorf("issuerLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVersionLabel(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "none": "", "TLS 1.3": "1.3", "TLS 1.0": "1.0", "SSLv3": "ssl3", "0x0305": "0x0305",
	} {
		if got := versionLabel(in); got != want {
			t.Errorf("versionLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzLabelValue: whatever a certificate says, the label is valid UTF-8,
// bounded, and free of control characters.
func FuzzLabelValue(f *testing.F) {
	f.Add(hostileCN)
	f.Add("Zscaler Root CA")
	f.Add(strings.Repeat("é", 100))
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []string{labelValue(s), issuerLabel(s), productLabel(s)} {
			if !utf8.ValidString(v) || len(v) > maxLabelBytes {
				t.Fatalf("label %q: valid %v, %d bytes", v, utf8.ValidString(v), len(v))
			}
			for _, r := range v {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
					t.Fatalf("label %q has %U", v, r)
				}
			}
		}
	})
}
