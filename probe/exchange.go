package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/plainhttp"
)

// Offer shapes a handshake made to learn what a middlebox accepts or
// forwards rather than what a build tool meets: grading an interceptor.
type Offer struct {
	// MinVersion and MaxVersion bound the versions offered; zero means
	// TLS 1.0 and TLS 1.3.
	MinVersion, MaxVersion uint16
	// CipherSuites are the only TLS 1.0–1.2 suites offered (RC4 and 3DES
	// included when listed); nil offers Go's defaults.
	CipherSuites []uint16
	// Request sends one GET / over the connection once the handshake
	// completes: an interceptor may complete the handshake with a leaf the
	// client trusts and only then answer with its own error page, so what a
	// client can receive shows only in the answer.
	Request bool
}

// Exchange is what one handshake of an Offer showed: the observation (the
// chain verified against both stores, the failure from the vocabulary)
// and, for a Request, who answered.
type Exchange struct {
	Obs           detector.Observation
	Answer        *detector.HTTPAnswer // nil when no answer came
	AnswerFailure detector.Failure     // why none came
}

// Exchange makes one handshake with t the way Probe reaches it (directly or
// through the proxy), offering only what o allows. Its ClientHello fits in
// one segment, as curl's, git's and pip's do: an interceptor that cannot
// read a split one (sslsplit) then sees the name, as it does for those
// clients. It never returns an error: failures are part of the exchange.
func (p *Prober) Exchange(ctx context.Context, t Target, o Offer) Exchange {
	x := Exchange{Obs: detector.Observation{Host: t.Host, Port: t.Port, Path: detector.Path{Kind: detector.PathDirect}}}
	conn, err := p.connect(ctx, t, &x.Obs)
	if err != nil {
		x.Obs.Failure, x.Obs.FailureDetail = detector.FailureOf(err), err.Error()
		return x
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	cfg := &tls.Config{
		ServerName:         t.Host,
		InsecureSkipVerify: true, // verified below against both stores; the chain is kept either way
		NextProtos:         []string{"http/1.1"},
		MinVersion:         o.MinVersion,
		MaxVersion:         o.MaxVersion,
		CipherSuites:       o.CipherSuites,
		CurvePreferences:   []tls.CurveID{tls.X25519, tls.CurveP256},
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS10
	}
	rec := &recordingConn{Conn: conn}
	tc := tls.Client(rec, cfg)
	start := time.Now()
	err = tc.HandshakeContext(ctx)
	x.Obs.HandshakeTime = time.Since(start)
	if err != nil {
		x.Obs.Failure, x.Obs.FailureDetail = detector.FailureOf(err), err.Error()
		if x.Obs.Failure == detector.FailureNotTLS {
			x.Obs.Plain = plainhttp.Parse(rec.head(ctx))
		}
		return x
	}
	x.Obs.TLS = p.tlsState(t.Host, tc.ConnectionState())
	if o.Request {
		x.Answer, x.AnswerFailure = request(tc, t.Host)
	}
	return x
}

// request sends GET / over an established connection and reads the
// answer's head and the start of its body, within the connection's
// deadline.
func request(conn io.ReadWriter, host string) (*detector.HTTPAnswer, detector.Failure) {
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: host, Path: "/"},
		Host: host, Header: http.Header{"User-Agent": {"mitmwatch"}}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Close: true}
	if err := req.Write(conn); err != nil {
		return nil, detector.FailureOf(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, maxHead+maxBody)), req)
	if err != nil {
		return nil, detector.FailureOf(err)
	}
	defer resp.Body.Close()
	return plainhttp.Read(resp), detector.FailureNone
}
