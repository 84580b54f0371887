// Package termsafe makes text that came from the network or from a
// certificate safe to print on a terminal. A certificate's names, the x509
// error that quotes them, an HTTP title, a captured SNI or ALPN are chosen
// by whoever is on the path; printed raw, their control characters and
// escape sequences let a hostile interceptor clear the screen, retitle the
// window, hide text or paint a fake "ok" table. html/template escapes the
// status page; termsafe escapes everything printed as text, at the
// boundary where it is printed, so the data itself stays exact.
package termsafe

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every character a terminal would act on, or would
// not draw as a glyph of its own, written as an escape:
//
//   - C0 controls (tab and newline too: they break the table) and DEL as
//     \x00–\x1f and \x7f;
//   - bytes that are not UTF-8 as \x80–\xff;
//   - C1 controls (U+0080–U+009F: U+009B is a CSI to many terminals) and
//     format characters — bidi overrides and isolates (U+202A–U+202E,
//     U+2066–U+2069) that reorder what is shown, marks, zero-width
//     characters, tags — and the line and paragraph separators as
//     \u009b or \U000e0001.
//
// Everything else — printable Unicode such as é or 中文 — is kept as is.
// A backslash is doubled only where it would otherwise read as the start
// of an escape (before x, u, U, another backslash or an escape), so the
// RFC 4514 escapes of a distinguished name (O=Example\, Inc.) print
// unchanged while the output still decodes back to exactly s, read left
// to right as Go reads \\, \xHH, \uHHHH and \UHHHHHHHH: distinct inputs
// give distinct outputs. The output is valid UTF-8 and holds none of the
// escaped characters.
func String(s string) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\\' || escaped(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteByte('\\')
			if ambiguous(s[i+size:]) {
				b.WriteByte('\\')
			}
		case r == utf8.RuneError && size == 1:
			writeEscape(&b, 'x', rune(s[i]), 2)
		case escaped(r, size) && r < utf8.RuneSelf:
			writeEscape(&b, 'x', r, 2)
		case escaped(r, size) && r <= 0xffff:
			writeEscape(&b, 'u', r, 4)
		case escaped(r, size):
			writeEscape(&b, 'U', r, 8)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escaped reports whether String writes the character r (size bytes of
// UTF-8; a lone invalid byte is utf8.RuneError of size 1) as an escape.
func escaped(r rune, size int) bool {
	switch {
	case r < ' ' || r == 0x7f:
		return true
	case r < utf8.RuneSelf:
		return false
	case r == utf8.RuneError:
		return size == 1 // U+FFFD itself is printable
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// ambiguous reports whether a backslash printed before rest would read as
// the start of an escape: rest starts with x, u, U, a backslash, or a
// character that is printed as an escape.
func ambiguous(rest string) bool {
	if rest == "" {
		return false
	}
	r, size := utf8.DecodeRuneInString(rest)
	return r == 'x' || r == 'u' || r == 'U' || r == '\\' || escaped(r, size)
}

func writeEscape(b *strings.Builder, kind byte, r rune, digits int) {
	b.WriteByte('\\')
	b.WriteByte(kind)
	h := strconv.FormatInt(int64(r), 16)
	for range digits - len(h) {
		b.WriteByte('0')
	}
	b.WriteString(h)
}
