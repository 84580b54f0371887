package passive

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// TLS wire constants (RFC 8446, RFC 5246).
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23
	recordHeaderLen        = 5
	// maxRecordLen is the largest record body a peer may send: 2^14
	// bytes of plaintext plus the expansion ciphertext is allowed.
	maxRecordLen = 1<<14 + 2048

	typeClientHello = 1
	typeServerHello = 2
	typeCertificate = 11

	extServerName          = 0x0000
	extSupportedGroups     = 0x000a
	extPointFormats        = 0x000b
	extSignatureAlgorithms = 0x000d
	extALPN                = 0x0010
	extSupportedVersions   = 0x002b

	versionTLS13 = 0x0304

	// maxCerts bounds the certificates kept from one Certificate message.
	maxCerts = 16
	// maxListLen bounds the lists kept from one hello (ciphers,
	// extensions, groups...); a real hello has far fewer.
	maxListLen = 512
)

// helloRetryRandom is the ServerHello.random that marks a
// HelloRetryRequest (RFC 8446, 4.1.3).
var helloRetryRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// The downgrade sentinels a TLS 1.3 server writes into the last eight
// bytes of its random when it negotiates TLS 1.2 or below (RFC 8446, 4.1.3).
var (
	downgradeTLS12 = []byte("DOWNGRD\x01")
	downgradeTLS11 = []byte("DOWNGRD\x00")
)

// errShort means more bytes are needed; any other error means the bytes are
// not what was expected.
var errShort = errors.New("incomplete")

// ClientHello is what a client offered, in wire order.
type ClientHello struct {
	LegacyVersion       uint16
	CipherSuites        []uint16
	Extensions          []uint16
	ServerName          string
	ALPN                []string
	SupportedVersions   []uint16
	SupportedGroups     []uint16
	PointFormats        []uint8
	SignatureAlgorithms []uint16
}

// Offers13 reports whether the client offered TLS 1.3.
func (h *ClientHello) Offers13() bool {
	for _, v := range h.SupportedVersions {
		if v == versionTLS13 {
			return true
		}
	}
	return false
}

// ServerHello is what a server chose.
type ServerHello struct {
	LegacyVersion    uint16
	Random           [32]byte
	CipherSuite      uint16
	Extensions       []uint16
	SupportedVersion uint16 // from supported_versions; 0 when absent
	ALPN             string
}

// Version is the negotiated version: supported_versions when present,
// else the legacy field.
func (s *ServerHello) Version() uint16 {
	if s.SupportedVersion != 0 {
		return s.SupportedVersion
	}
	return s.LegacyVersion
}

// HelloRetry reports whether this is a HelloRetryRequest, after which the
// client sends a second ClientHello.
func (s *ServerHello) HelloRetry() bool { return s.Random == helloRetryRandom }

// DowngradeSentinel reports whether the random carries the RFC 8446
// sentinel: the server supports TLS 1.3 but was offered less.
func (s *ServerHello) DowngradeSentinel() bool {
	tail := s.Random[24:]
	return bytes.Equal(tail, downgradeTLS12) || bytes.Equal(tail, downgradeTLS11)
}

// Alert is a plaintext TLS alert.
type Alert struct {
	Level, Description uint8
}

func (a Alert) String() string {
	name := alertNames[a.Description]
	if name == "" {
		name = fmt.Sprintf("alert %d", a.Description)
	}
	if a.Level == 2 {
		return "fatal " + name
	}
	return name
}

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
	42: "bad_certificate", 43: "unsupported_certificate", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error",
	51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
	110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
	120: "no_application_protocol",
}

// recordHeader reads a TLS record header. ok is false when the five bytes
// cannot start a record: an unknown type, a major version other than 3, or
// a length no peer may send.
func recordHeader(b []byte) (typ uint8, length int, ok bool) {
	if len(b) < recordHeaderLen {
		return 0, 0, false
	}
	typ, length = b[0], int(b[3])<<8|int(b[4])
	if typ < recordChangeCipherSpec || typ > recordApplicationData || b[1] != 3 || b[2] > 4 || length > maxRecordLen {
		return 0, 0, false
	}
	return typ, length, true
}

// LooksLikeTLS reports whether b can be the start of a TLS stream: a
// handshake or alert record header. Fewer than three bytes are given the
// benefit of the doubt.
func LooksLikeTLS(b []byte) bool {
	if len(b) >= 1 && b[0] != recordHandshake && b[0] != recordAlert {
		return false
	}
	if len(b) >= 2 && b[1] != 3 {
		return false
	}
	if len(b) >= 3 && b[2] > 4 {
		return false
	}
	return true
}

// ParseClientHello parses the body of a ClientHello handshake message.
func ParseClientHello(body []byte) (*ClientHello, error) {
	s := cryptobyte.String(body)
	h := &ClientHello{}
	var random, sid, ciphers, compression []byte
	if !s.ReadUint16(&h.LegacyVersion) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&sid)) ||
		!s.ReadUint16LengthPrefixed((*cryptobyte.String)(&ciphers)) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&compression)) {
		return nil, errors.New("malformed ClientHello")
	}
	if len(ciphers)%2 != 0 {
		return nil, errors.New("malformed ClientHello: odd cipher list")
	}
	h.CipherSuites = uint16s(ciphers)
	if s.Empty() {
		return h, nil // no extensions at all (SSL 3.0 style)
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, errors.New("malformed ClientHello extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errors.New("malformed ClientHello extension")
		}
		if len(h.Extensions) < maxListLen {
			h.Extensions = append(h.Extensions, typ)
		}
		if err := h.extension(typ, data); err != nil {
			return nil, fmt.Errorf("ClientHello extension %#04x: %w", typ, err)
		}
	}
	return h, nil
}

func (h *ClientHello) extension(typ uint16, data cryptobyte.String) error {
	bad := errors.New("malformed")
	switch typ {
	case extServerName:
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) {
			return bad
		}
		for !list.Empty() {
			var kind uint8
			var name cryptobyte.String
			if !list.ReadUint8(&kind) || !list.ReadUint16LengthPrefixed(&name) {
				return bad
			}
			if kind == 0 && h.ServerName == "" {
				h.ServerName = cleanName(name)
			}
		}
	case extALPN:
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) {
			return bad
		}
		for !list.Empty() {
			var proto cryptobyte.String
			if !list.ReadUint8LengthPrefixed(&proto) {
				return bad
			}
			if len(h.ALPN) < maxListLen {
				h.ALPN = append(h.ALPN, string(proto))
			}
		}
	case extSupportedVersions:
		var list []byte
		if !data.ReadUint8LengthPrefixed((*cryptobyte.String)(&list)) || len(list)%2 != 0 {
			return bad
		}
		h.SupportedVersions = uint16s(list)
	case extSupportedGroups:
		var list []byte
		if !data.ReadUint16LengthPrefixed((*cryptobyte.String)(&list)) || len(list)%2 != 0 {
			return bad
		}
		h.SupportedGroups = uint16s(list)
	case extPointFormats:
		var list []byte
		if !data.ReadUint8LengthPrefixed((*cryptobyte.String)(&list)) {
			return bad
		}
		h.PointFormats = append([]byte(nil), list[:min(len(list), maxListLen)]...)
	case extSignatureAlgorithms:
		var list []byte
		if !data.ReadUint16LengthPrefixed((*cryptobyte.String)(&list)) || len(list)%2 != 0 {
			return bad
		}
		h.SignatureAlgorithms = uint16s(list)
	}
	return nil
}

// ParseServerHello parses the body of a ServerHello handshake message.
func ParseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	h := &ServerHello{}
	var random, sid []byte
	var compression uint8
	if !s.ReadUint16(&h.LegacyVersion) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&sid)) ||
		!s.ReadUint16(&h.CipherSuite) || !s.ReadUint8(&compression) {
		return nil, errors.New("malformed ServerHello")
	}
	copy(h.Random[:], random)
	if s.Empty() {
		return h, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, errors.New("malformed ServerHello extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errors.New("malformed ServerHello extension")
		}
		if len(h.Extensions) < maxListLen {
			h.Extensions = append(h.Extensions, typ)
		}
		switch typ {
		case extSupportedVersions:
			if !data.ReadUint16(&h.SupportedVersion) {
				return nil, errors.New("malformed ServerHello supported_versions")
			}
		case extALPN:
			var list, proto cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) || !list.ReadUint8LengthPrefixed(&proto) {
				return nil, errors.New("malformed ServerHello ALPN")
			}
			h.ALPN = string(proto)
		}
	}
	return h, nil
}

// ParseCertificate splits the body of a TLS 1.2 (or earlier) Certificate
// message into the DER certificates it carries, leaf first. It does not
// copy: the slices alias body.
func ParseCertificate(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, errors.New("malformed Certificate")
	}
	var out [][]byte
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&der) || len(der) == 0 {
			return out, errors.New("malformed Certificate entry")
		}
		if len(out) == maxCerts {
			return out, fmt.Errorf("more than %d certificates; the rest are ignored", maxCerts)
		}
		out = append(out, der)
	}
	return out, nil
}

func uint16s(b []byte) []uint16 {
	n := min(len(b)/2, maxListLen)
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return out
}

// cleanName keeps a server name printable: SNI comes from the network and
// ends up in a terminal.
func cleanName(b []byte) string {
	if len(b) > 253 {
		b = b[:253]
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		case c > ' ' && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '?')
		}
	}
	return string(out)
}

// isGREASE reports whether v is one of the reserved GREASE values (RFC
// 8701), which fingerprints ignore because clients pick them at random.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}
