package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// TLS wire constants (RFC 8446).
const (
	recordTypeHandshake     = 22
	recordHeaderLen         = 5
	maxRecordLen            = 1<<14 + 2048 // plaintext limit plus expansion
	handshakeTypeClientHi   = 1
	handshakeHeaderLen      = 4
	extensionSupportedVersn = 0x002b
)

// SentinelRelay is a downgrading middlebox: a TCP relay in front of an
// origin that strips supported_versions from the client's first
// ClientHello and passes everything else through. A TLS 1.3 server then
// negotiates TLS 1.2 and stamps the RFC 8446 downgrade sentinel into its
// random, which a TLS 1.3 client must refuse — so the client sees "tls:
// downgrade attempt detected" rather than a weaker session. (A TLS 1.2
// client has no sentinel to check; it fails later, at Finished, whose
// transcript covers the original hello.)
type SentinelRelay struct {
	raw    *rawServer
	target string
}

// Bounds on the relay's own work; the relayed session has none.
const (
	relayDialTimeout  = 5 * time.Second
	relayHelloTimeout = 10 * time.Second
)

// NewSentinelRelay starts a downgrading relay to target ("127.0.0.1:port").
func NewSentinelRelay(target string) (*SentinelRelay, error) {
	r := &SentinelRelay{target: target}
	s, err := serveRaw(r.relay)
	if err != nil {
		return nil, fmt.Errorf("lab: sentinel relay: %w", err)
	}
	r.raw = s
	return r, nil
}

func (r *SentinelRelay) relay(c net.Conn, conns *connSet) {
	up, ok := dialUpstream(r.target, conns)
	if !ok {
		return
	}
	defer up.Close()

	c.SetReadDeadline(time.Now().Add(relayHelloTimeout))
	first, err := readRecord(c)
	c.SetReadDeadline(time.Time{})
	if out, stripped := stripSupportedVersions(first); stripped {
		first = out
	}
	if _, werr := up.Write(first); werr != nil || err != nil {
		return
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(up, c)
	}()
	pipe(c, up)
	<-done
}

// dialUpstream connects a relay to its target, tracked with the relay's
// connections so that closing the relay ends it too.
func dialUpstream(target string, conns *connSet) (net.Conn, bool) {
	up, err := net.DialTimeout("tcp", target, relayDialTimeout)
	if err != nil {
		return nil, false
	}
	tc := &trackedConn{Conn: up, set: conns}
	if !conns.add(tc) {
		up.Close()
		return nil, false
	}
	return tc, true
}

// pipe copies src to dst and half-closes dst; on an error it closes both
// so the other direction ends too.
func pipe(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// readRecord reads one TLS record, or only its header if it is not a
// plausible handshake record. What was read is returned even on error, so
// it can be forwarded unchanged.
func readRecord(c io.Reader) ([]byte, error) {
	buf := make([]byte, recordHeaderLen, recordHeaderLen+maxRecordLen)
	n, err := io.ReadFull(c, buf)
	if err != nil {
		return buf[:n], err
	}
	length := int(binary.BigEndian.Uint16(buf[3:5]))
	if buf[0] != recordTypeHandshake || length > maxRecordLen {
		return buf, nil
	}
	buf = buf[:recordHeaderLen+length]
	n, err = io.ReadFull(c, buf[recordHeaderLen:])
	return buf[:recordHeaderLen+n], err
}

// Addr is the relay's "127.0.0.1:port".
func (r *SentinelRelay) Addr() string { return r.raw.Addr() }

// Close stops the relay and ends both sides of every relayed connection.
func (r *SentinelRelay) Close() error { return r.raw.Close() }

// helloLayout locates, in a record holding a ClientHello, the fields the
// rewrite must change. Offsets are into the record.
type helloLayout struct {
	recordEnd int // end of the first record
	helloEnd  int // end of the ClientHello message
	extLenOff int // offset of the extensions' length field
}

var errNotHello = errors.New("not a whole ClientHello record")

// parseHello checks every length on the path to the extensions. It needs
// the whole ClientHello in the first record; anything may follow it.
func parseHello(rec []byte) (helloLayout, error) {
	var l helloLayout
	if len(rec) < recordHeaderLen+handshakeHeaderLen || rec[0] != recordTypeHandshake {
		return l, errNotHello
	}
	l.recordEnd = recordHeaderLen + int(binary.BigEndian.Uint16(rec[3:5]))
	if l.recordEnd > len(rec) || rec[5] != handshakeTypeClientHi {
		return l, errNotHello
	}
	bodyLen := int(rec[6])<<16 | int(rec[7])<<8 | int(rec[8])
	p := recordHeaderLen + handshakeHeaderLen
	l.helloEnd = p + bodyLen
	if l.helloEnd > l.recordEnd {
		return l, errNotHello // fragmented over records
	}
	p += 2 + 32 // legacy_version, random
	if p >= l.helloEnd {
		return l, errNotHello
	}
	p += 1 + int(rec[p]) // legacy_session_id
	if p+2 > l.helloEnd {
		return l, errNotHello
	}
	p += 2 + int(binary.BigEndian.Uint16(rec[p:])) // cipher_suites
	if p >= l.helloEnd {
		return l, errNotHello
	}
	p += 1 + int(rec[p]) // legacy_compression_methods
	if p+2 > l.helloEnd {
		return l, errNotHello // no extensions at all
	}
	l.extLenOff = p
	if p+2+int(binary.BigEndian.Uint16(rec[p:])) != l.helloEnd {
		return l, errNotHello
	}
	for p += 2; p < l.helloEnd; {
		if p+4 > l.helloEnd {
			return l, errNotHello
		}
		p += 4 + int(binary.BigEndian.Uint16(rec[p+2:]))
	}
	if p != l.helloEnd {
		return l, errNotHello
	}
	return l, nil
}

// stripSupportedVersions removes every supported_versions extension from a
// ClientHello record and fixes the record, handshake and extensions
// lengths. It reports false, and returns rec unchanged, if rec is not a
// well-formed ClientHello record or has no such extension.
func stripSupportedVersions(rec []byte) ([]byte, bool) {
	l, err := parseHello(rec)
	if err != nil {
		return rec, false
	}
	var kept []byte
	removed := 0
	for p := l.extLenOff + 2; p < l.helloEnd; {
		typ := binary.BigEndian.Uint16(rec[p:])
		end := p + 4 + int(binary.BigEndian.Uint16(rec[p+2:]))
		if typ == extensionSupportedVersn {
			removed += end - p
		} else {
			kept = append(kept, rec[p:end]...)
		}
		p = end
	}
	if removed == 0 {
		return rec, false
	}
	out := make([]byte, 0, len(rec)-removed)
	out = append(out, rec[:3]...)
	out = binary.BigEndian.AppendUint16(out, uint16(l.recordEnd-recordHeaderLen-removed))
	bodyLen := l.helloEnd - recordHeaderLen - handshakeHeaderLen - removed
	out = append(out, rec[5], byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen))
	out = append(out, rec[recordHeaderLen+handshakeHeaderLen:l.extLenOff]...)
	extLen := l.helloEnd - l.extLenOff - 2 - removed
	out = binary.BigEndian.AppendUint16(out, uint16(extLen))
	out = append(out, kept...)
	out = append(out, rec[l.helloEnd:]...)
	return out, true
}
