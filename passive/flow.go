package passive

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// Bounds on the clear-text exchanges a flow reads before TLS: a proxy's
// CONNECT request and answer, and a plain-HTTP answer on the TLS port.
const (
	maxHTTPHead = 8 << 10
	maxPlain    = 16 << 10
	maxTTLs     = 4
)

// flow is the state of one tracked connection while its handshake is
// reassembled. Flows are pooled: reset keeps their buffers.
type flow struct {
	key      flowKey
	clientEP endpoint
	conn     Conn
	last     time.Time

	c2s, s2c           stream
	crr, srr           recordReader
	c2sStart, s2cStart int // offset of the first TLS byte in each direction (after CONNECT)
	limit              int // bytes kept per direction

	clientTLS  bool // the client's bytes are TLS (past any CONNECT)
	connect    bool // the client asked a proxy for a tunnel
	tls13      bool // a HelloRetryRequest or ServerHello chose TLS 1.3
	clientDone bool // nothing more to learn from the client
	serverDone bool // nothing more to learn from the server
	plain      bool // the server answers in clear text; gathering it
	truncated  bool // a packet of the flow was cut by the snap length
}

func (f *flow) reset(limit int) {
	f.c2s.reset()
	f.s2c.reset()
	f.crr.reset(limit)
	f.srr.reset(limit)
	*f = flow{c2s: f.c2s, s2c: f.s2c, crr: f.crr, srr: f.srr, limit: limit}
}

// complete reports whether the flow has shown all it will.
func (f *flow) complete() bool { return f.serverDone && f.clientDone }

// data takes a segment's payload in one direction.
func (f *flow) data(fromClient bool, ts time.Time, seq uint32, payload []byte) {
	if fromClient {
		if f.c2s.add(seq, payload, f.limit) {
			f.fromClient(ts)
		}
		return
	}
	if f.s2c.add(seq, payload, f.limit) {
		f.fromServer(ts)
	}
}

// fromClient reads what the client sent: a CONNECT request, then the
// ClientHello, then records until they turn to ciphertext (a plaintext
// alert there says the client refused the server's certificate).
func (f *flow) fromClient(ts time.Time) {
	buf := f.c2s.buf
	if !f.clientTLS {
		if !f.clientStart(buf) {
			return
		}
	}
	if f.clientDone || len(buf) <= f.c2sStart {
		return
	}
	if f.conn.ClientHelloAt.IsZero() {
		f.conn.ClientHelloAt = ts
	}
	for range len(buf) {
		it, err := f.crr.next(buf[f.c2sStart:])
		if errors.Is(err, errShort) {
			return
		}
		if err != nil {
			f.note("client: " + err.Error())
			f.clientDone = true
			return
		}
		switch it.kind {
		case itemHandshake:
			if it.msgType == typeClientHello && f.conn.Hello == nil {
				h, err := ParseClientHello(it.body)
				if err != nil {
					f.note(err.Error())
					f.clientDone = true
					return
				}
				f.conn.Hello = h
			}
		case itemAlert:
			a := it.alert
			f.conn.ClientAlert = &a
			f.clientDone = true
			return
		case itemChangeCipherSpec:
			if !f.tls13 {
				f.crr.encrypted = true
			}
		case itemEncrypted:
			f.clientDone = true
			return
		}
	}
}

// clientStart decides from the client's first bytes what the flow is: a
// TLS client, a CONNECT to a proxy, or something else to leave alone.
func (f *flow) clientStart(buf []byte) bool {
	if !f.connect && len(buf) >= 8 && bytes.HasPrefix(buf, []byte("CONNECT ")) {
		f.connect = true
	}
	if !f.connect {
		if !LooksLikeTLS(buf) {
			f.note("the client does not speak TLS")
			f.clientDone, f.serverDone = true, true
			return false
		}
		f.clientTLS = true
		return true
	}
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxHTTPHead {
			f.note("CONNECT request too long")
			f.clientDone, f.serverDone = true, true
		}
		return false
	}
	line, _, _ := bytes.Cut(buf[:end], []byte("\r\n"))
	fields := bytes.Fields(line)
	if len(fields) >= 2 {
		f.conn.Proxy = cleanName(fields[1])
	}
	f.c2sStart = end + 4
	f.clientTLS = true
	return true
}

// fromServer reads what the server sent: the proxy's answer to CONNECT, then
// the ServerHello and, below TLS 1.3, the Certificate message.
func (f *flow) fromServer(ts time.Time) {
	buf := f.s2c.buf
	if f.connect && f.conn.ProxyStatus == 0 && !f.proxyAnswer(buf) {
		return
	}
	if f.plain {
		if len(buf)-f.s2cStart >= maxPlain {
			f.endPlain()
		}
		return
	}
	if f.serverDone || len(buf) <= f.s2cStart {
		return
	}
	if f.conn.ServerHelloAt.IsZero() {
		f.conn.ServerHelloAt = ts
	}
	for range len(buf) {
		it, err := f.srr.next(buf[f.s2cStart:])
		switch {
		case errors.Is(err, errShort):
			return
		case errors.Is(err, errNotTLS) && f.srr.off == 0 && len(f.srr.hs) == 0:
			f.plain = true
			f.conn.End = EndNotTLS
			return
		case err != nil:
			f.note("server: " + err.Error())
			f.serverDone = true
			return
		}
		if f.serverItem(it) {
			f.serverDone = true
			return
		}
	}
}

// serverItem takes one item from the server and reports whether the
// server has now shown everything that is visible.
func (f *flow) serverItem(it item) bool {
	switch it.kind {
	case itemAlert:
		a := it.alert
		f.conn.ServerAlert = &a
		return true
	case itemEncrypted:
		return true
	case itemChangeCipherSpec:
		if f.tls13 {
			return false // compatibility noise after a HelloRetryRequest
		}
		return true // resumed: the certificate is not sent again
	}
	switch it.msgType {
	case typeServerHello:
		sh, err := ParseServerHello(it.body)
		if err != nil {
			f.note(err.Error())
			return true
		}
		if sh.HelloRetry() {
			f.conn.HelloRetry, f.tls13 = true, true
			return false
		}
		f.conn.ServerHello = sh
		if sh.Version() >= versionTLS13 {
			f.tls13 = true
			return true // everything after this is encrypted
		}
		return false
	case typeCertificate:
		if f.conn.ServerHello == nil {
			f.note("Certificate before ServerHello")
			return true
		}
		ders, err := ParseCertificate(it.body)
		if err != nil {
			f.note(err.Error())
		}
		for _, d := range ders {
			f.conn.Certificates = append(f.conn.Certificates, bytes.Clone(d))
		}
		return true
	case 12, 13, 14: // ServerKeyExchange, CertificateRequest, ServerHelloDone
		return f.conn.ServerHello != nil
	}
	return false
}

// proxyAnswer reads a proxy's answer to CONNECT. It reports whether TLS
// may follow.
func (f *flow) proxyAnswer(buf []byte) bool {
	if !bytes.HasPrefix(buf, []byte("HTTP/")) && len(buf) >= 5 {
		f.note("the proxy's answer to CONNECT is not HTTP")
		f.serverDone, f.clientDone = true, true
		return false
	}
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxHTTPHead {
			f.note("the proxy's answer to CONNECT is too long")
			f.serverDone, f.clientDone = true, true
		}
		return false
	}
	line, _, _ := bytes.Cut(buf, []byte("\r\n"))
	if fields := bytes.Fields(line); len(fields) >= 2 {
		f.conn.ProxyStatus, _ = strconv.Atoi(string(fields[1]))
	}
	if f.conn.ProxyStatus == 0 {
		f.conn.ProxyStatus = -1
	}
	if f.conn.ProxyStatus != 200 {
		f.plain = true // the refusal, kept as the plain answer
		return true
	}
	f.s2cStart = end + 4
	return true
}

// endPlain keeps what the server said in clear text and ends the flow.
func (f *flow) endPlain() {
	f.conn.Plain = bytes.Clone(f.s2c.buf[f.s2cStart:min(len(f.s2c.buf), f.s2cStart+maxPlain)])
	f.conn.End = EndNotTLS
	f.serverDone, f.clientDone = true, true
}

// serverTTL records the TTL of a server packet after the SYN-ACK.
func (f *flow) serverTTL(ttl uint8) {
	for _, t := range f.conn.ServerTTLs {
		if t == ttl {
			return
		}
	}
	if len(f.conn.ServerTTLs) < maxTTLs {
		f.conn.ServerTTLs = append(f.conn.ServerTTLs, ttl)
	}
}

// closed ends the flow on a reset or FIN from one side.
func (f *flow) closed(fromClient, reset bool) {
	switch {
	case f.plain:
		f.endPlain()
		return
	case f.serverDone:
		f.clientDone = true
		return
	case fromClient && !reset:
		return // a half-close: the server may still answer
	case f.lost():
		f.conn.End = EndTruncated
	case fromClient:
		f.conn.End = EndClientGone
	case f.conn.SYNACK.IsZero() && !f.conn.SYN.IsZero() && reset:
		f.conn.End = EndRefused
	case reset:
		f.conn.End = EndServerReset
	default:
		f.conn.End = EndServerFIN
	}
	f.serverDone, f.clientDone = true, true
}

// finish settles how the observation ended when the flow stops being
// tracked before it completed (end of capture, idle, eviction).
func (f *flow) finish(why End) {
	switch {
	case f.plain:
		f.endPlain()
		return
	case f.serverDone:
		return
	case f.conn.End != EndHandshake:
		return
	case f.conn.SYNACK.IsZero() && !f.conn.SYN.IsZero() && len(f.s2c.buf) == 0:
		f.conn.End = EndNoSYNACK
	case f.lost():
		f.conn.End = EndTruncated
	default:
		f.conn.End = why
	}
}

// lost reports whether bytes the handshake needed are missing: cut by the
// snap length, never captured, or beyond the size bound.
func (f *flow) lost() bool {
	return f.truncated || f.c2s.gap || f.s2c.gap || f.c2s.full || f.s2c.full ||
		len(f.c2s.pending) > 0 || len(f.s2c.pending) > 0
}

func (f *flow) note(s string) {
	if f.conn.Note != "" {
		f.conn.Note += "; "
	}
	f.conn.Note += s
}
