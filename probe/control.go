package probe

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// When the ClientHello naming a host is reset, closed or left unanswered,
// the probe asks the same address the same question under another name: a
// filter keyed on the server name lets that control through and the server
// answers it, while a host or path that is down fails it too (see
// detector.ControlAttempt).

// The wait before a control is sent, see silenceBound.
const (
	silenceRTTs  = 4
	silenceFloor = time.Second
)

// recordAlert is the content type of a TLS alert record: a server refusing
// a name it does not serve answers with one.
const recordAlert = 0x15

// silenceBound is how long a ClientHello may go unanswered before a
// control is sent beside it, given rtt, the round trip the connection took
// to open (the TCP connect; through a proxy, the connect and the CONNECT,
// which the proxy answers once it reached the host). A server answers a
// hello one round trip later plus its own work, milliseconds of signing:
// silenceRTTs round trips leave room for a busy server and a lost segment
// on a long path. On a short path the floor rules: it outlasts Linux's
// minimum retransmission timeout (200 ms) twice over, so a hello lost on
// the way is not taken for one dropped on purpose, and a relay that routes
// by name to a server far beyond it has time to get the answer back. It is
// at most half of what is left of ctx, so the control has time to finish.
func silenceBound(ctx context.Context, rtt time.Duration) time.Duration {
	b := max(silenceRTTs*rtt, silenceFloor)
	if d, ok := ctx.Deadline(); ok {
		b = min(b, time.Until(d)/2)
	}
	return b
}

// controlName returns a neutral server name: a random label under
// .invalid, which cannot exist (RFC 6761), so no filter lists it and none
// can take it for the host. A name rather than no SNI at all: a filter
// that finds no server name falls back to another name for the connection
// — the CONNECT line's, the certificate the server sends (squid's
// ssl::server_name, firewalls that categorise by it) — which is the
// host's, and would block the control too. A server that does not know
// the name still answers, with its default certificate or an alert.
func controlName() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + ".invalid"
}

// clientConfig is the ClientHello the probe sends for name: what build
// tools send, accepting any chain (verified apart, so the chain is kept).
func clientConfig(name string) *tls.Config {
	return &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: true, // verified against both stores; the chain is kept either way
		NextProtos:         nextProtos,
		MinVersion:         tls.VersionTLS10, // see what the path offers rather than refusing it
	}
}

// unanswered reports whether a handshake error is one a filter keyed on the
// name causes when the hello got no byte back: a reset, a close, silence.
func unanswered(err error) bool {
	return slices.Contains([]detector.Failure{detector.FailureReset, detector.FailureEOF, detector.FailureTimeout}, detector.FailureOf(err))
}

// watchedHandshake runs tc's handshake (rec beneath it) and watches its
// ClientHello. When the hello is reset or closed unanswered, or gets no
// answer within silenceBound(rtt), a control goes to ct. Once the control
// is answered while the hello still is not — after the bound, and after
// silenceRTTs of the control's own round trips — the handshake is given
// up instead of waited out to ctx's deadline. The control is returned when
// the hello got no answer at all; nil when it was answered, or when no
// time was left to send one.
func (p *Prober) watchedHandshake(ctx context.Context, tc *tls.Conn, rec *recordingConn, ct Target, rtt time.Duration) (*detector.ControlAttempt, error) {
	start := time.Now()
	// The handshake runs on this goroutine, its watch on a new one: a
	// fresh goroutine grows its stack through copies to hold a handshake
	// and its verification, and the watch needs little.
	done := make(chan error, 1)
	type watched struct {
		control *detector.ControlAttempt
		err     error
	}
	out := make(chan watched, 1)
	go func() {
		c, err := p.watch(ctx, done, rec, ct, rtt, start)
		out <- watched{c, err}
	}()
	done <- tc.HandshakeContext(ctx)
	w := <-out
	return w.control, w.err
}

// watch is watchedHandshake's watch over a handshake started at start,
// which ends with done's error; it returns once the handshake has ended.
func (p *Prober) watch(ctx context.Context, done <-chan error, rec *recordingConn, ct Target, rtt time.Duration, start time.Time) (*detector.ControlAttempt, error) {
	cctx, stopControl := context.WithCancel(ctx)
	defer stopControl()
	var (
		ctrl   chan detector.ControlAttempt // the control under way, nil before and after
		result *detector.ControlAttempt
		giveUp <-chan time.Time
		gaveUp bool
	)
	send := func() {
		ctrl = make(chan detector.ControlAttempt, 1)
		go func() { ctrl <- p.control(cctx, ct) }()
	}
	bound := silenceBound(ctx, rtt)
	silence := time.NewTimer(time.Until(start.Add(bound))) // from the handshake's start, not this goroutine's
	defer silence.Stop()
	for {
		select {
		case err := <-done:
			if err == nil || rec.heard() || !unanswered(err) {
				stopControl()
				if ctrl != nil {
					<-ctrl
				}
				return nil, err
			}
			if result == nil && ctrl == nil && ctx.Err() == nil {
				send() // reset or closed before the bound
			}
			if ctrl != nil {
				r := <-ctrl
				result = &r
			}
			if gaveUp {
				err = fmt.Errorf("no answer to the ClientHello in %s; gave up once a control naming %s was answered: %w",
					time.Since(start).Round(time.Millisecond), result.SNI, err)
			}
			return result, err
		case <-silence.C:
			if ctrl == nil && result == nil && !rec.heard() {
				send()
			}
		case r := <-ctrl:
			ctrl, result = nil, &r
			if r.Answered {
				giveUp = time.After(time.Until(start.Add(max(bound, silenceRTTs*r.RTT))))
			}
		case <-giveUp:
			giveUp = nil
			if !rec.heard() {
				gaveUp = true
				rec.Conn.SetDeadline(time.Now()) // the handshake returns, timed out
			}
		}
	}
}

// control opens a new connection to ct (the connected address, or the
// same proxy and CONNECT), sends the same ClientHello under a neutral name
// and waits, within ctx, for the first byte of the answer.
func (p *Prober) control(ctx context.Context, ct Target) detector.ControlAttempt {
	c := detector.ControlAttempt{SNI: controlName()}
	var scratch detector.Observation
	conn, err := p.connect(ctx, ct, &scratch)
	if err != nil {
		c.Failure, c.Detail = detector.FailureOf(err), err.Error()
		return c
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	rec := &helloRecorder{Conn: conn}
	err = tls.Client(rec, clientConfig(c.SNI)).HandshakeContext(ctx)
	switch {
	case rec.answered.IsZero():
		c.Failure, c.Detail = detector.FailureOf(err), err.Error()
	case rec.first == recordHandshake:
		c.Answered, c.RTT, c.Detail = true, rec.answered.Sub(rec.sent), "answered with a TLS handshake record"
	case rec.first == recordAlert:
		c.Answered, c.RTT, c.Detail = true, rec.answered.Sub(rec.sent), "answered with a TLS alert"
	default:
		c.Failure, c.Detail = detector.FailureNotTLS, fmt.Sprintf("answered with a byte (0x%02x) that begins no TLS record", rec.first)
	}
	return c
}
