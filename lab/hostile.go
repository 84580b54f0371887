package lab

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// Hostile servers: what a path can do to a prober that reads what it is
// sent. Each one reads the ClientHello, then answers in a way meant to hold
// the prober or make it allocate — a byte at a time, not at all, or a
// certificate message announcing more than any chain needs. A prober must
// cut each of them off within its timeout with a bounded read; these servers
// are how the tests check that it does.

// TLS wire constants the hostile servers need to look like a server.
const (
	msgServerHello  = 0x02
	msgCertificate  = 0x0b
	maxRecord       = 1 << 14 // the largest plaintext record (RFC 8446 §5.1)
	maxHandshakeLen = 1<<24 - 1
)

// Hostile is a server that answers every connection with a hostile
// handshake. Written counts the bytes it managed to send in all, so a test
// can tell how much the prober accepted (the kernel's socket buffers hold a
// few megabytes of it on loopback whether the client reads them or not).
type Hostile struct {
	raw     *rawServer
	written atomic.Int64
}

// Addr is the server's "127.0.0.1:port".
func (h *Hostile) Addr() string { return h.raw.Addr() }

// Written is how many bytes the server wrote on all its connections.
func (h *Hostile) Written() int64 { return h.written.Load() }

// Close ends every connection and stops listening.
func (h *Hostile) Close() error { return h.raw.Close() }

// serveHostile starts a Hostile whose answer, after the ClientHello was
// read, is written by answer; what it writes is counted.
func serveHostile(name string, answer func(w io.Writer)) (*Hostile, error) {
	h := &Hostile{}
	s, err := serveRaw(func(c net.Conn, _ *connSet) {
		if _, err := readRecord(c); err != nil {
			return
		}
		answer(&countingWriter{w: c, n: &h.written})
		io.Copy(io.Discard, c) // hold the connection until the client or Close ends it
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", name, err)
	}
	h.raw = s
	return h, nil
}

// NewTrickler answers a ClientHello with a ServerHello record one byte every
// interval, forever: the record announces the largest size a record may
// have and the message inside it announces 64 KiB, so a client waits for
// more as long as bytes keep coming. A client that resets its read deadline
// on every byte never times out.
func NewTrickler(every time.Duration) (*Hostile, error) {
	return serveHostile("trickler", func(w io.Writer) {
		stream := endlessServerHello()
		b := make([]byte, 1)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range tick.C {
			b[0] = stream()
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	})
}

// NewStaller answers a ClientHello with a whole ServerHello (TLS 1.2, so
// that what follows would be in clear) and then nothing: a handshake that is
// never finished. A black hole (NewBlackhole) is the one that never starts.
func NewStaller() (*Hostile, error) {
	return serveHostile("staller", func(w io.Writer) {
		w.Write(serverHello12())
	})
}

// NewHugeChain answers a ClientHello with a ServerHello (TLS 1.2) and a
// Certificate message whose header announces announced bytes, then streams
// total bytes of certificate data in full records, as fast as the client
// takes them: a chain of 100 MB, say, where a real one is a few KiB. The
// protocol's own limit on the announcement is 16 MiB - 1 (a 24-bit length);
// larger announcements are cut to it.
func NewHugeChain(announced int, total int64) (*Hostile, error) {
	announced = min(announced, maxHandshakeLen)
	return serveHostile("huge chain", func(w io.Writer) {
		if _, err := w.Write(serverHello12()); err != nil {
			return
		}
		hdr := []byte{msgCertificate, byte(announced >> 16), byte(announced >> 8), byte(announced)}
		body := make([]byte, maxRecord)
		copy(body, hdr)
		for sent := int64(0); sent < total; sent += maxRecord {
			if _, err := w.Write(record(body)); err != nil {
				return
			}
			clear(body[:len(hdr)]) // the header only once
		}
	})
}

// NewPlainTrickler answers anything with an HTTP status line, then header
// bytes one every interval, forever: a plain-text box on the TLS port that
// never finishes its answer.
func NewPlainTrickler(every time.Duration) (*Hostile, error) {
	return serveHostile("plain trickler", func(w io.Writer) {
		if _, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Trickle: "); err != nil {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range tick.C {
			if _, err := w.Write([]byte{'a'}); err != nil {
				return
			}
		}
	})
}

// record frames a handshake payload as one TLS 1.2 record.
func record(payload []byte) []byte {
	out := make([]byte, 5, 5+len(payload))
	out[0], out[1], out[2] = recordTypeHandshake, 3, 3
	binary.BigEndian.PutUint16(out[3:], uint16(len(payload)))
	return append(out, payload...)
}

// serverHello12 is a TLS 1.2 ServerHello choosing
// ECDHE-RSA-AES128-GCM-SHA256, which every client offers, with a random
// server random and no extensions, in its own record.
func serverHello12() []byte {
	body := []byte{3, 3} // TLS 1.2
	var random [32]byte
	rand.Read(random[:])
	body = append(body, random[:]...)
	body = append(body, 0)          // no session id
	body = append(body, 0xc0, 0x2f) // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	body = append(body, 0)          // no compression
	msg := append([]byte{msgServerHello, 0, 0, byte(len(body))}, body...)
	return record(msg)
}

// endlessServerHello returns the bytes of an endless stream of full records
// whose first carries a ServerHello header announcing 64 KiB, one byte per
// call.
func endlessServerHello() func() byte {
	const announced = 1 << 16
	cur := record(append([]byte{msgServerHello, announced >> 16, 0, 0}, make([]byte, maxRecord-4)...))
	i := 0
	return func() byte {
		if i == len(cur) {
			cur, i = record(make([]byte, maxRecord)), 0
		}
		b := cur[i]
		i++
		return b
	}
}

// countingWriter counts what reached the connection.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Churner is an interceptor that presents a new CA on every connection: a
// fresh root with a random issuer name (carrying markup, terminal escapes
// and a newline, and longer than any real one), a leaf with a random serial
// and random extra SANs beside the name asked for. Every label, line and
// page that shows an issuer sees a value it never saw before.
type Churner struct {
	http  *httpServer
	count atomic.Int64
}

// NewChurner starts a churning interceptor on loopback.
func NewChurner() (*Churner, error) {
	c := &Churner{}
	cfg := &tls.Config{
		NextProtos: defaultNextProtos,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.forge(serverName(hello))
		},
	}
	s, err := serveHTTP(ok, tlsWrap(cfg))
	if err != nil {
		return nil, fmt.Errorf("lab: churner: %w", err)
	}
	c.http = s
	return c, nil
}

// ChurnIssuer is the issuer name the churner's n-th CA carries, so a test
// can look for it verbatim.
func ChurnIssuer(n int64) string {
	return fmt.Sprintf("<b>Churn</b> \x1b[2J CA %d\n%s", n, strings.Repeat("x", 200))
}

func (c *Churner) forge(name string) (*tls.Certificate, error) {
	n := c.count.Add(1)
	root, err := newRoot(pkix.Name{CommonName: ChurnIssuer(n)})
	if err != nil {
		return nil, fmt.Errorf("lab: churner: %w", err)
	}
	var r [4]byte
	rand.Read(r[:])
	cert, err := root.Issue(LeafOptions{}, name, fmt.Sprintf("%x.churn.example", r))
	if err != nil {
		return nil, fmt.Errorf("lab: churner: %w", err)
	}
	cert.Certificate = append(cert.Certificate, root.Cert.Raw)
	return cert, nil
}

// Presented is how many CAs the churner has made: one per handshake.
func (c *Churner) Presented() int64 { return c.count.Load() }

// Addr is the churner's "127.0.0.1:port".
func (c *Churner) Addr() string { return c.http.Addr() }

// Close stops the churner and ends its connections.
func (c *Churner) Close() error { return c.http.Close() }
