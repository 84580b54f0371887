package passive

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Fingerprints name the software on each end of a handshake: JA3 and JA4
// for the client, JA3S and JA4S for the server. A tool that is intercepted
// meets the interceptor's server fingerprint, not the origin's; and a
// middlebox that rewrites hellos changes the client's.
type Fingerprints struct {
	JA3     string `json:"ja3"`      // the MD5 of JA3String
	JA3Text string `json:"ja3_text"` // version,ciphers,extensions,groups,point formats
	JA4     string `json:"ja4"`
	JA4R    string `json:"ja4_r"` // JA4 before hashing
	JA3S    string `json:"ja3s,omitempty"`
	JA3SStr string `json:"ja3s_text,omitempty"`
	JA4S    string `json:"ja4s,omitempty"`
}

// FingerprintsOf computes the fingerprints of a connection's hellos; a
// missing hello leaves its side empty.
func FingerprintsOf(c *ClientHello, s *ServerHello) Fingerprints {
	var fp Fingerprints
	if c != nil {
		fp.JA3Text = JA3Text(c)
		fp.JA3 = md5Hex(fp.JA3Text)
		fp.JA4, fp.JA4R = JA4(c)
	}
	if s != nil {
		fp.JA3SStr = JA3SText(s)
		fp.JA3S = md5Hex(fp.JA3SStr)
		fp.JA4S = JA4S(s)
	}
	return fp
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// JA3Text is the JA3 string of a ClientHello: decimal values, GREASE left
// out, fields joined by commas and values by dashes.
func JA3Text(c *ClientHello) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(c.LegacyVersion)))
	b.WriteByte(',')
	decimals(&b, c.CipherSuites)
	b.WriteByte(',')
	decimals(&b, c.Extensions)
	b.WriteByte(',')
	decimals(&b, c.SupportedGroups)
	b.WriteByte(',')
	for i, p := range c.PointFormats {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

// JA3SText is the JA3S string of a ServerHello.
func JA3SText(s *ServerHello) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(s.LegacyVersion)))
	b.WriteByte(',')
	b.WriteString(strconv.Itoa(int(s.CipherSuite)))
	b.WriteByte(',')
	decimals(&b, s.Extensions)
	return b.String()
}

func decimals(b *strings.Builder, vs []uint16) {
	first := true
	for _, v := range vs {
		if isGREASE(v) {
			continue
		}
		if !first {
			b.WriteByte('-')
		}
		first = false
		b.WriteString(strconv.Itoa(int(v)))
	}
}

// JA4 returns the JA4 fingerprint of a ClientHello over TCP and its raw
// (unhashed) form, as FoxIO's specification defines them.
func JA4(c *ClientHello) (hashed, raw string) {
	ciphers := withoutGREASE(c.CipherSuites)
	exts := withoutGREASE(c.Extensions)
	sni := "i"
	if slices.Contains(exts, extServerName) {
		sni = "d"
	}
	version := c.LegacyVersion
	if vs := withoutGREASE(c.SupportedVersions); len(vs) > 0 {
		version = slices.Max(vs)
	}
	alpn := "00"
	if len(c.ALPN) > 0 {
		alpn = alpnChars(c.ALPN[0])
	}
	a := fmt.Sprintf("t%s%s%02d%02d%s", versionCode(version), sni, min(len(ciphers), 99), min(len(exts), 99), alpn)

	slices.Sort(ciphers)
	var sorted []uint16
	for _, e := range exts {
		if e != extServerName && e != extALPN {
			sorted = append(sorted, e)
		}
	}
	slices.Sort(sorted)
	cRaw := hexList(ciphers)
	eRaw := hexList(sorted)
	if sigs := hexList(c.SignatureAlgorithms); sigs != "" {
		eRaw += "_" + sigs
	}
	return a + "_" + hash12(cRaw, len(ciphers) == 0) + "_" + hash12(eRaw, len(sorted) == 0), a + "_" + cRaw + "_" + eRaw
}

// JA4S returns the JA4S fingerprint of a ServerHello over TCP.
func JA4S(s *ServerHello) string {
	alpn := "00"
	if s.ALPN != "" {
		alpn = alpnChars(s.ALPN)
	}
	exts := withoutGREASE(s.Extensions)
	a := fmt.Sprintf("t%s%02d%s", versionCode(s.Version()), min(len(exts), 99), alpn)
	return fmt.Sprintf("%s_%04x_%s", a, s.CipherSuite, hash12(hexList(exts), len(exts) == 0))
}

func withoutGREASE(vs []uint16) []uint16 {
	out := make([]uint16, 0, len(vs))
	for _, v := range vs {
		if !isGREASE(v) {
			out = append(out, v)
		}
	}
	return out
}

func hexList(vs []uint16) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%04x", v)
	}
	return b.String()
}

func hash12(s string, empty bool) string {
	if empty {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// versionCode is JA4's two characters for a protocol version.
func versionCode(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0200:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// alpnChars is JA4's rendering of an ALPN value: its first and last
// characters, or those of its hex form when they are not alphanumeric.
func alpnChars(p string) string {
	if p == "" {
		return "00"
	}
	first, last := p[0], p[len(p)-1]
	if alnum(first) && alnum(last) {
		return string([]byte{first, last})
	}
	h := hex.EncodeToString([]byte(p))
	return string([]byte{h[0], h[len(h)-1]})
}

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
