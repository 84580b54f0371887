package lab

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// PlainOptions describe the answer of a plaintext box on the TLS port.
type PlainOptions struct {
	// Status defaults to 400 Bad Request, what a web server says to a
	// ClientHello.
	Status int
	// Headers, e.g. Location for a captive portal's 302, or Via.
	Headers http.Header
	// Body, e.g. an HTML block page.
	Body string
}

// Plain speaks plain HTTP where TLS is expected: a transparent proxy's block
// page, a captive portal's redirect, or a misrouted web server. Like a real
// HTTP server it reads what the client sends (a ClientHello or a request),
// answers once, and closes.
type Plain struct {
	raw *rawServer
}

// Bounds on what Plain reads before answering.
const (
	plainReadTimeout = 5 * time.Second
	plainMaxHead     = 64 << 10
)

// NewPlain starts a plaintext responder on loopback.
func NewPlain(opts PlainOptions) (*Plain, error) {
	resp := plainResponse(opts)
	s, err := serveRaw(func(c net.Conn, _ *connSet) {
		c.SetDeadline(time.Now().Add(plainReadTimeout))
		br := bufio.NewReaderSize(c, 4096)
		if err := readRequestOrHello(br); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
		// Lingering close: closing with unread input would reset the
		// connection and could destroy the answer in flight.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, plainMaxHead))
	})
	if err != nil {
		return nil, fmt.Errorf("lab: plain: %w", err)
	}
	return &Plain{raw: s}, nil
}

// plainResponse renders the whole answer once.
func plainResponse(opts PlainOptions) []byte {
	status := opts.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	h := opts.Headers.Clone()
	if h == nil {
		h = make(http.Header)
	}
	if opts.Body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(opts.Body)))
	h.Set("Connection", "close")
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(opts.Body)
	return b.Bytes()
}

// readRequestOrHello consumes one TLS record if the client speaks TLS, or
// an HTTP request head otherwise.
func readRequestOrHello(br *bufio.Reader) error {
	first, err := br.Peek(1)
	if err != nil {
		return err
	}
	if first[0] == recordTypeHandshake {
		hdr, err := br.Peek(recordHeaderLen)
		if err != nil {
			return err
		}
		n := recordHeaderLen + int(binary.BigEndian.Uint16(hdr[3:5]))
		_, err = br.Discard(n)
		return err
	}
	for read := 0; read < plainMaxHead; {
		line, err := br.ReadSlice('\n')
		read += len(line)
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		if err == nil && len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
	return nil
}

// Addr is the responder's "127.0.0.1:port".
func (p *Plain) Addr() string { return p.raw.Addr() }

// Close stops the responder and ends its connections.
func (p *Plain) Close() error { return p.raw.Close() }
