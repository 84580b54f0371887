// Package sshprobe reads an SSH server's host key the way Git over SSH
// first meets it, and nothing more. SSH has no certificate chain: the host
// key is all that tells the server from something on the path answering in
// its place, and a port that answers no SSH is what sends people to
// `StrictHostKeyChecking no`. The probe runs the key exchange with
// golang.org/x/crypto/ssh, whose signature check proves the peer holds the
// key, records the key and refuses it, so it never authenticates or sends
// anything. What it saw becomes a detector.Observation; judging it against
// pins and baselines is package detector's.
package sshprobe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/plainhttp"
)

// Target is an SSH endpoint to probe. Address, when set, is dialled
// instead of resolving Host. Fallback is another endpoint of the same
// service ("ssh.github.com:443"), tried when this one gives no SSH
// answer: only its answer tells a blocked port from a service that is down.
type Target struct {
	Host     string
	Port     int
	Address  string
	Fallback string
}

// Dialer opens connections; *net.Dialer is one. Tests and the lab swap it.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Prober probes SSH targets. The zero value dials directly with the
// system resolver.
type Prober struct {
	Dialer   Dialer   // nil: a net.Dialer
	Resolver Resolver // nil: net.DefaultResolver
}

// ClientVersion is the identification mitmwatch sends. It names the tool,
// so an operator reading sshd's log knows what knocked.
const ClientVersion = "SSH-2.0-mitmwatch"

// hostKeyAlgorithms are asked in OpenSSH's order of preference, so the key
// the probe reads is the key git would be shown.
var hostKeyAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA,
}

// errKeyRead is how the probe ends the handshake once it holds the key.
var errKeyRead = errors.New("host key recorded; not authenticating")

// Limits on what is read from a peer that is not SSH: enough to name it.
const (
	maxRecord = plainhttp.MaxHead + plainhttp.MaxBody
	// moreWait bounds the wait for the rest of a non-SSH answer.
	moreWait = 500 * time.Millisecond
)

// Probe reads the host key of t within ctx's deadline. When t has a
// fallback, t itself gets half the time left, and the fallback is tried
// with the rest if t gave no answer at all (a port refused, reset or
// silent): an SSH server that answered, or something else that did, needs
// no control. It never returns an error: a failure is part of the
// observation.
func (p *Prober) Probe(ctx context.Context, t Target) detector.Observation {
	obs := detector.Observation{Host: t.Host, Port: t.Port, Protocol: detector.ProtocolSSH,
		Path: detector.Path{Kind: detector.PathDirect}, SSH: &detector.SSHState{}}
	own := ctx
	if t.Fallback != "" {
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			own, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
			defer cancel()
		}
	}
	conn, err := p.connect(own, t, &obs)
	if err == nil {
		start := time.Now()
		var a attempt
		a, err = p.handshake(own, conn, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
		obs.HandshakeTime = time.Since(start)
		obs.SSH.Banner, obs.SSH.HostKey, obs.Plain = a.banner, a.key, a.plain
	}
	if err != nil {
		obs.Failure, obs.FailureDetail = detector.FailureOf(err), err.Error()
	}
	answered := obs.Failure == detector.FailureNotSSH || obs.Failure == detector.FailureSSHHandshake
	if obs.SSH.HostKey == nil && !answered && t.Fallback != "" && ctx.Err() == nil {
		obs.SSH.Fallback = p.fallback(ctx, t.Fallback)
	}
	return obs
}

// fallback tries the service's other endpoint.
func (p *Prober) fallback(ctx context.Context, endpoint string) *detector.SSHFallback {
	fb := &detector.SSHFallback{Endpoint: endpoint}
	host, portText, err := net.SplitHostPort(endpoint)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		fb.Failure, fb.Detail = detector.FailureUnknown, fmt.Sprintf("fallback %q is not host:port", endpoint)
		return fb
	}
	var scratch detector.Observation
	conn, err := p.connect(ctx, Target{Host: host, Port: port}, &scratch)
	if err == nil {
		var a attempt
		a, err = p.handshake(ctx, conn, endpoint)
		fb.Banner, fb.HostKey = a.banner, a.key
	}
	if err != nil {
		fb.Failure, fb.Detail = detector.FailureOf(err), err.Error()
	}
	return fb
}

// attempt is what one handshake showed.
type attempt struct {
	banner string
	key    *detector.SSHHostKey
	plain  *detector.HTTPAnswer
}

// handshake runs the key exchange on conn until the host key arrives, and
// closes conn. A peer that is not SSH is read a little further, so that
// what it is can be told.
func (p *Prober) handshake(ctx context.Context, conn net.Conn, addr string) (attempt, error) {
	defer conn.Close()
	rec := &recordingConn{Conn: conn}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var a attempt
	cfg := &ssh.ClientConfig{
		User:              "git",
		ClientVersion:     ClientVersion,
		HostKeyAlgorithms: hostKeyAlgorithms,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			a.key = &detector.SSHHostKey{Type: key.Type(), SHA256: sha256.Sum256(key.Marshal())}
			return errKeyRead
		},
	}
	c, _, _, err := ssh.NewClientConn(rec, addr, cfg)
	if c != nil {
		c.Close() // cannot happen: the callback refuses every key
	}
	seen := rec.bytes()
	b := ParseBanner(seen)
	a.banner = b.Text()
	switch {
	case a.key != nil:
		return a, nil
	case b.SSH():
		return a, &failure{detector.FailureSSHHandshake, err}
	case len(seen) == 0:
		return a, err
	}
	// Not SSH: read what else it says, briefly, to name it.
	if looksHTTP(seen) {
		conn.SetReadDeadline(time.Now().Add(moreWait))
		rec.readMore()
		a.plain = plainhttp.Parse(rec.bytes())
		if a.plain.Status != 0 {
			a.banner = firstLine(seen)
		}
	}
	what := "no SSH identification line"
	if looksTLS(seen) {
		what = "a TLS record instead of an SSH identification line"
		a.banner = string(seen[:min(len(seen), 16)])
	}
	return a, &failure{detector.FailureNotSSH, fmt.Errorf("%s: %w", what, err)}
}

// connect opens a TCP connection to t, recording addresses and timings.
func (p *Prober) connect(ctx context.Context, t Target, obs *detector.Observation) (net.Conn, error) {
	var addrs []netip.AddrPort
	if t.Address != "" {
		ap, err := netip.ParseAddrPort(t.Address)
		if err != nil {
			return nil, fmt.Errorf("target %s: address %q: %w", t.Host, t.Address, err)
		}
		addrs = []netip.AddrPort{ap}
	} else if ip, err := netip.ParseAddr(t.Host); err == nil {
		addrs = []netip.AddrPort{netip.AddrPortFrom(ip, uint16(t.Port))}
	} else {
		ips, err := p.resolver().LookupNetIP(ctx, "ip", t.Host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", t.Host, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, netip.AddrPortFrom(ip.Unmap(), uint16(t.Port)))
		}
	}
	var lastErr error
	for _, ap := range addrs {
		obs.ResolvedAddrs = append(obs.ResolvedAddrs, ap.Addr())
		start := time.Now()
		conn, err := p.dialer().DialContext(ctx, "tcp", ap.String())
		if err == nil {
			obs.ConnectTime, obs.ConnectedAddr = time.Since(start), ap
			return conn, nil
		}
		lastErr = fmt.Errorf("connecting to %s: %w", ap, err)
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("resolving %s: no addresses", t.Host)
	}
	return nil, lastErr
}

func (p *Prober) dialer() Dialer {
	if p.Dialer != nil {
		return p.Dialer
	}
	return &net.Dialer{}
}

func (p *Prober) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// failure is an error that knows its place in the failure vocabulary.
type failure struct {
	f   detector.Failure
	err error
}

func (e *failure) Error() string {
	if e.err == nil {
		return string(e.f)
	}
	return e.err.Error()
}

func (e *failure) Unwrap() error { return e.err }

// Failure names the failure; detector.FailureOf honours it.
func (e *failure) Failure() detector.Failure { return e.f }

// firstLine is the first line of data, for a banner.
func firstLine(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r")))
}

// recordingConn keeps the first maxRecord bytes read.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.keep(p[:n])
	return n, err
}

func (c *recordingConn) keep(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxRecord - c.buf.Len(); room > 0 && len(p) > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
}

// readMore reads on until the deadline, the end of the stream or the
// limit, keeping what comes.
func (c *recordingConn) readMore() {
	buf := make([]byte, 4096)
	for c.len() < maxRecord {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func (c *recordingConn) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len()
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}
