package termsafe

import (
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON returns encoded JSON made as safe to print on a terminal as String
// makes text, with the same meaning. encoding/json and slog's JSON handler
// escape C0 controls inside strings, but write DEL, C1 controls (U+009B is
// a CSI to many terminals), bidi overrides and the other format characters
// raw: JSON writes each of those as \uXXXX (a surrogate pair above
// U+FFFF), which decodes to the same string, and a byte that is not UTF-8
// as \ufffd, which is what encoding/json makes of one. The rest of ASCII
// is left alone: inside a string the encoder has escaped it, outside one
// it is the document's structure. b is returned as is when nothing
// changes.
func JSON(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if rewritten(r, size) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case !rewritten(r, size):
			out = append(out, b[i:i+size]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			out = appendJSONEscape(appendJSONEscape(out, r1), r2)
		default:
			out = appendJSONEscape(out, r) // an invalid byte is RuneError: \ufffd
		}
		i += size
	}
	return out
}

// rewritten reports whether JSON writes r (size bytes) as an escape.
func rewritten(r rune, size int) bool {
	return r == 0x7f || r >= utf8.RuneSelf && escaped(r, size)
}

func appendJSONEscape(out []byte, r rune) []byte {
	out = append(out, `\u`...)
	h := strconv.FormatInt(int64(r), 16)
	for range 4 - len(h) {
		out = append(out, '0')
	}
	return append(out, h...)
}

// JSONWriter returns a writer that passes what is written to w through
// JSON, for JSON documents and logs on their way to a terminal. Each Write
// must hold whole characters, as the writes of json.Encoder (one value)
// and of slog's handlers (one record) do. slog's text handler already
// quotes a value holding such characters; the writer leaves its output
// unchanged.
func JSONWriter(w io.Writer) io.Writer { return jsonWriter{w} }

type jsonWriter struct{ w io.Writer }

// Write reports len(p) when the rewritten bytes were all written.
func (j jsonWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(JSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
