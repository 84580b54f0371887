package exporter

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLabelBytes bounds a label value that came from the network. 64 bytes
// keep any real CA or product name readable while a hostile certificate
// cannot blow up the series or the page that shows it.
const maxLabelBytes = 64

// ellipsis marks a value that was cut.
const ellipsis = "…"

// labelValue makes a string safe and bounded as a label value: valid UTF-8
// (invalid bytes become U+FFFD), whitespace runs (newlines included) one
// space, control and format characters (bidi overrides, zero-width) dropped,
// and at most maxLabelBytes bytes, cut on a rune boundary and marked with
// "…".
func labelValue(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxLabelBytes {
		return s
	}
	cut := maxLabelBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " ") + ellipsis
}

// issuerLabel is the issuer_cn label. A box that names its CA after its own
// address would put an IP in a label; the address says nothing the target
// label does not, so it is replaced by a fixed word.
func issuerLabel(cn string) string {
	v := labelValue(cn)
	if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return "ip-address"
	}
	return v
}

// productLabel is the product label of an interception: the product's name,
// or "unknown" when no fingerprint named it.
func productLabel(p string) string {
	if v := labelValue(p); v != "" {
		return v
	}
	return "unknown"
}

// targetLabel is the target label: the "host:port" key from the config,
// never a string from the network. It is only made valid UTF-8, so that a
// broken state file cannot fail the scrape.
func targetLabel(key string) string {
	return strings.ToValidUTF8(key, string(utf8.RuneError))
}

// versionLabel turns crypto/tls's version name ("TLS 1.3", "SSLv3") into the
// version label ("1.3", "ssl3"); "" and "none" mean no handshake and give "".
func versionLabel(name string) string {
	switch {
	case name == "" || name == "none":
		return ""
	case name == "SSLv3":
		return "ssl3"
	case strings.HasPrefix(name, "TLS "):
		return strings.TrimPrefix(name, "TLS ")
	}
	return labelValue(name) // an unknown version, as "0x0305"
}
