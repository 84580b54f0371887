package passive

import (
	"net/netip"
	"time"
)

// Conn is what the capture showed of one TCP connection's opening: the TCP
// handshake, the TLS hellos, and for TLS 1.2 and below the certificates.
// It is raw material; Analyze turns it into a detector.Observation.
type Conn struct {
	Client, Server netip.AddrPort
	Start          time.Time // first packet seen
	SYN, SYNACK    time.Time // zero when the capture lacks them
	SYNACKTTL      uint8     // IP TTL (IPv6 hop limit) of the SYN-ACK
	// ServerTTLs are the distinct TTLs of the server's later packets, in
	// the order first seen (at most four).
	ServerTTLs []uint8

	ClientHelloAt time.Time // first byte of the ClientHello
	ServerHelloAt time.Time // first byte of the server's answer

	// Proxy is the target of a CONNECT when the connection is a tunnel
	// through an explicit proxy; ProxyStatus is the proxy's answer.
	Proxy       string
	ProxyStatus int

	Hello       *ClientHello
	ServerHello *ServerHello // the final one, after any HelloRetryRequest
	HelloRetry  bool
	// Certificates are the DER certificates of a TLS 1.2 (or earlier)
	// Certificate message, leaf first. TLS 1.3 encrypts them: then nil.
	Certificates [][]byte
	// ServerAlert and ClientAlert are plaintext alerts each side sent.
	ServerAlert, ClientAlert *Alert
	// Plain is the start of what the server said when it did not speak
	// TLS (or what a proxy said when it refused CONNECT).
	Plain []byte

	End  End    // how the observation of the connection ended
	Note string // parse problems and other caveats, for people
}

// End says how the observation of a connection ended.
type End uint8

// The ways a connection's observation ends.
const (
	EndHandshake   End = iota // the handshake was seen as far as it is visible
	EndRefused                // the SYN was answered with a reset
	EndNoSYNACK               // no answer to the SYN in the capture
	EndServerReset            // the server reset before its answer was complete
	EndServerFIN              // the server closed before its answer was complete
	EndClientGone             // the client reset or closed before the server answered
	EndNoAnswer               // the capture ended, or the flow went idle, with no answer
	EndTruncated              // bytes were missing: snap length, lost segments, or the size bound
	EndNotTLS                 // the server answered in clear text
	EndEvicted                // the flow table was full
)

var endNames = [...]string{"handshake", "refused", "no-syn-ack", "server-reset", "server-fin",
	"client-gone", "no-answer", "truncated", "not-tls", "evicted"}

func (e End) String() string {
	if int(e) < len(endNames) {
		return endNames[e]
	}
	return "unknown"
}

// ConnectRTT is the time from SYN to SYN-ACK, when both were captured.
func (c *Conn) ConnectRTT() (time.Duration, bool) {
	if c.SYN.IsZero() || c.SYNACK.IsZero() || c.SYNACK.Before(c.SYN) {
		return 0, false
	}
	return c.SYNACK.Sub(c.SYN), true
}

// HelloRTT is the time from the ClientHello to the server's answer.
func (c *Conn) HelloRTT() (time.Duration, bool) {
	if c.ClientHelloAt.IsZero() || c.ServerHelloAt.IsZero() || c.ServerHelloAt.Before(c.ClientHelloAt) {
		return 0, false
	}
	return c.ServerHelloAt.Sub(c.ClientHelloAt), true
}
