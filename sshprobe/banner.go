package sshprobe

import (
	"bytes"
	"strings"
)

// Banner is what a peer sent on an SSH port before any key exchange, read
// the way RFC 4253 section 4.2 says: lines that do not start with "SSH-"
// may come first; the first that does is the identification line,
// "SSH-protoversion-softwareversion SP comments".
type Banner struct {
	// Line is the identification line without its CR LF; empty when none
	// was found.
	Line     string
	Proto    string // "2.0", or "1.99" for a server that also speaks SSH 1
	Software string // "OpenSSH_9.6p1"
	Comments string // "Debian-3"
	// Preamble holds the lines before it, which some servers use for a
	// notice and which a filter answering the port in place of SSH fills
	// with whatever it speaks.
	Preamble []string
}

// SSH reports whether the peer identified itself as an SSH server.
func (b Banner) SSH() bool { return b.Line != "" }

// Limits of RFC 4253 and of what x/crypto/ssh accepts: no line may exceed
// 255 bytes, and a peer that sends more than a few lines before its
// identification is not one.
const (
	maxLine          = 255
	maxPreambleLines = 16
)

// ParseBanner reads the start of what a peer sent. It never fails: bytes
// that hold no identification line give a Banner whose SSH is false, with
// the lines read as its preamble. A line may be cut off by the end of data.
func ParseBanner(data []byte) Banner {
	var b Banner
	for len(data) > 0 && len(b.Preamble) <= maxPreambleLines {
		line, rest, found := bytes.Cut(data, []byte("\n"))
		data = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > maxLine {
			line = line[:maxLine]
		}
		if !found {
			// The end of the data cuts the line: an identification line
			// is only one once its end arrived.
			if len(line) > 0 {
				b.Preamble = append(b.Preamble, string(line))
			}
			break
		}
		if bytes.HasPrefix(line, []byte("SSH-")) {
			b.Line = string(line)
			b.parseIdent()
			break
		}
		b.Preamble = append(b.Preamble, string(line))
	}
	if len(b.Preamble) > maxPreambleLines {
		b.Preamble = b.Preamble[:maxPreambleLines]
	}
	return b
}

// parseIdent splits the identification line into its fields.
func (b *Banner) parseIdent() {
	ident, comments, _ := strings.Cut(b.Line, " ")
	b.Comments = comments
	rest := strings.TrimPrefix(ident, "SSH-")
	proto, software, _ := strings.Cut(rest, "-")
	b.Proto, b.Software = proto, software
}

// Text is what a report shows of the banner: the identification line, or,
// when there is none, the lines the peer sent instead, joined by " | ".
// It is the peer's text: escape it before printing.
func (b Banner) Text() string {
	if b.SSH() {
		return b.Line
	}
	return strings.Join(b.Preamble, " | ")
}

// looksHTTP reports whether what a peer sent starts like an HTTP
// response: a filter or proxy answering the port as a web server.
func looksHTTP(data []byte) bool { return bytes.HasPrefix(data, []byte("HTTP/")) }

// looksTLS reports whether what a peer sent starts like a TLS record (an
// alert or a handshake): a TLS-only box on the port.
func looksTLS(data []byte) bool {
	return len(data) >= 3 && (data[0] == 0x15 || data[0] == 0x16) && data[1] == 0x03 && data[2] <= 0x04
}
