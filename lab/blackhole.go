package lab

import (
	"fmt"
	"io"
	"net"
)

// Blackhole accepts TCP connections and never answers: the firewall that
// drops what follows the handshake, where a client can only time out.
type Blackhole struct {
	raw *rawServer
}

// NewBlackhole starts a black hole on loopback.
func NewBlackhole() (*Blackhole, error) {
	s, err := serveRaw(func(c net.Conn, _ *connSet) {
		io.Copy(io.Discard, c) // until the client or Close ends it
	})
	if err != nil {
		return nil, fmt.Errorf("lab: blackhole: %w", err)
	}
	return &Blackhole{raw: s}, nil
}

// Addr is the black hole's "127.0.0.1:port".
func (b *Blackhole) Addr() string { return b.raw.Addr() }

// Close ends every held connection and stops listening.
func (b *Blackhole) Close() error { return b.raw.Close() }
