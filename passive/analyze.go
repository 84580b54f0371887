package passive

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/plainhttp"
	"github.com/mitmwatch/mitmwatch/trust"
)

// SourcePcap is the Source of a host that no config target names.
const SourcePcap = "pcap"

// Bounds on what an Analysis keeps, whatever the size of the capture.
const (
	DefaultMaxGroups = 4096
	maxSamples       = 256
)

// Analysis gathers the connections a Tracker reports into groups of
// alike connections (same host, server, client software, negotiated
// parameters and chain) and builds one detector.Observation per group, as
// the active probe builds one per target; Capture hands them over as
// detector cases. Add is the Tracker's emit function.
type Analysis struct {
	PublicRoots *x509.CertPool // the public (Mozilla) roots
	SystemRoots *x509.CertPool // this machine's trust store
	Policy      detector.Policy
	// Expect, when set, gives the expectation of a host the capture
	// shows and where it was written (a rules.yaml line); ok is false for
	// a host nobody named, whose Source is then SourcePcap.
	Expect func(host string, port int) (exp detector.Expectation, source string, ok bool)
	// Now, when set, is the time chains are verified and judged at;
	// nil uses the capture's own timestamps, so a capture judges the same
	// way years later.
	Now       func() time.Time
	MaxGroups int // default DefaultMaxGroups

	groups   map[string]*Group
	order    []*Group
	skipped  uint64
	overflow uint64
	chains   map[[32]byte][]*x509.Certificate
}

// Group is a set of alike connections and what they amount to.
type Group struct {
	Obs          detector.Observation
	Expect       detector.Expectation
	Source       string
	Count        int
	First, Last  time.Time
	Client       netip.AddrPort // the first connection's client
	Fingerprints Fingerprints
	// ChainVisible is false when the capture cannot show the chain (TLS
	// 1.3 encrypts it; a resumed session does not send it); ChainNote
	// then says why, and trust is not judged.
	ChainVisible bool
	ChainNote    string
	HelloRetry   bool
	SYNACKTTL    uint8   // 0 when the SYN-ACK is not in the capture
	ServerTTLs   []uint8 // distinct TTLs of later server packets
	ClientAlert  string  // a plaintext alert from the client: it refused the handshake
	End          End
	Note         string

	connect, hello []time.Duration // samples, for the medians
}

// TTLChanged reports whether later server packets came with another TTL
// than the SYN-ACK: something other than the server may answer for it.
func (g *Group) TTLChanged() bool {
	return (&detector.PathTrace{SYNACKTTL: g.SYNACKTTL, ServerTTLs: g.ServerTTLs}).TTLChanged()
}

// Add takes one connection; it is the Tracker's emit function.
func (a *Analysis) Add(c *Conn) {
	if a.groups == nil {
		a.groups = make(map[string]*Group)
		a.chains = make(map[[32]byte][]*x509.Certificate)
	}
	if c.Hello == nil && c.Proxy == "" && (c.End == EndClientGone || c.End == EndHandshake) {
		a.skipped++ // no TLS attempt: a port check, a client that never spoke
		return
	}
	fp := FingerprintsOf(c.Hello, c.ServerHello)
	chainSum := chainSum(c.Certificates)
	host, port := hostPort(c)
	key := groupKey(c, host, port, fp, chainSum)
	g := a.groups[key]
	if g == nil {
		max := a.MaxGroups
		if max <= 0 {
			max = DefaultMaxGroups
		}
		if len(a.order) >= max {
			a.overflow++
			return
		}
		g = a.newGroup(c, host, port, fp, chainSum)
		a.groups[key] = g
		a.order = append(a.order, g)
	}
	g.Count++
	if c.Start.Before(g.First) {
		g.First = c.Start
	}
	if c.Start.After(g.Last) {
		g.Last = c.Start
	}
	if d, ok := c.ConnectRTT(); ok && len(g.connect) < maxSamples {
		g.connect = append(g.connect, d)
	}
	if d, ok := c.HelloRTT(); ok && len(g.hello) < maxSamples {
		g.hello = append(g.hello, d)
	}
	for _, t := range c.ServerTTLs {
		if !slices.Contains(g.ServerTTLs, t) && len(g.ServerTTLs) < maxTTLs {
			g.ServerTTLs = append(g.ServerTTLs, t)
		}
	}
}

// hostPort names what the client meant to reach: the SNI (or the CONNECT
// target) and the port, else the server's address.
func hostPort(c *Conn) (string, int) {
	host, port := c.Server.Addr().String(), int(c.Server.Port())
	if c.Proxy != "" {
		if h, p, err := net.SplitHostPort(c.Proxy); err == nil {
			host = strings.ToLower(h)
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		}
	}
	if c.Hello != nil && c.Hello.ServerName != "" {
		host = c.Hello.ServerName
	}
	return host, port
}

func groupKey(c *Conn, host string, port int, fp Fingerprints, chain [32]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%s|%s|%d|%s|%s|%x|%d|%d", host, port, c.Server, c.Proxy, c.ProxyStatus, fp.JA4R, fp.JA3SStr, chain, c.End, len(c.Plain))
	if sh := c.ServerHello; sh != nil {
		fmt.Fprintf(&b, "|%s|%t", sh.ALPN, sh.DowngradeSentinel())
	}
	if c.ServerAlert != nil {
		fmt.Fprintf(&b, "|sa%d", c.ServerAlert.Description)
	}
	if c.ClientAlert != nil {
		fmt.Fprintf(&b, "|ca%d", c.ClientAlert.Description)
	}
	if c.SYNACKTTL != 0 {
		fmt.Fprintf(&b, "|ttl%d", c.SYNACKTTL)
	}
	return b.String()
}

func chainSum(ders [][]byte) [32]byte {
	h := sha256.New()
	for _, d := range ders {
		h.Write(d)
	}
	var sum [32]byte
	if len(ders) > 0 {
		h.Sum(sum[:0])
	}
	return sum
}

// newGroup builds the observation of a group's first connection.
func (a *Analysis) newGroup(c *Conn, host string, port int, fp Fingerprints, sum [32]byte) *Group {
	g := &Group{
		Source: SourcePcap, First: c.Start, Last: c.Start, Client: c.Client,
		Fingerprints: fp, HelloRetry: c.HelloRetry, SYNACKTTL: c.SYNACKTTL, End: c.End, Note: c.Note,
		ChainVisible: true,
	}
	if c.ClientAlert != nil {
		g.ClientAlert = c.ClientAlert.String()
	}
	obs := detector.Observation{Host: host, Port: port, Path: detector.Path{Kind: detector.PathDirect}, ConnectedAddr: c.Server}
	if c.Proxy != "" {
		obs.Path = detector.Path{Kind: detector.PathProxy, Proxy: c.Server.String()}
	}
	a.outcome(c, &obs, g, sum)
	g.Obs = obs
	return g
}

// outcome fills in how the attempt ended: a failure from the vocabulary,
// or the negotiated TLS state.
func (a *Analysis) outcome(c *Conn, obs *detector.Observation, g *Group, sum [32]byte) {
	sh := c.ServerHello
	switch {
	case c.End == EndNotTLS && c.Proxy != "" && c.ProxyStatus != 200:
		obs.Failure, obs.FailureDetail = detector.FailureProxy, fmt.Sprintf("proxy refused CONNECT: HTTP %d", c.ProxyStatus)
		obs.Plain = plainhttp.Parse(c.Plain)
	case c.End == EndNotTLS:
		obs.Failure = detector.FailureNotTLS
		obs.FailureDetail = "tls: first record does not look like a TLS handshake"
		obs.Plain = plainhttp.Parse(c.Plain)
	case sh == nil && c.ServerAlert != nil:
		obs.Failure, obs.FailureDetail = detector.FailureTLSAlert, "remote error: tls: "+c.ServerAlert.String()
		if c.ServerAlert.Description == 70 {
			obs.Failure = detector.FailureProtocolVersion
		}
	case sh != nil && c.Hello != nil && c.Hello.Offers13() && sh.Version() < versionTLS13 && sh.DowngradeSentinel():
		// What crypto/tls calls "downgrade attempt detected": the server
		// was offered less than the client sent.
		obs.Failure = detector.FailureDowngrade
		obs.FailureDetail = fmt.Sprintf("the ServerHello (%s) carries the RFC 8446 downgrade sentinel although the client offered TLS 1.3", detector.VersionName(sh.Version()))
	case sh == nil:
		obs.Failure, obs.FailureDetail = failureOf(c)
	default:
		obs.TLS = a.tlsState(c, obs.Host, g, sum)
	}
}

// failureOf names why no ServerHello came.
func failureOf(c *Conn) (detector.Failure, string) {
	switch c.End {
	case EndRefused:
		return detector.FailureRefused, "the SYN was answered with a reset"
	case EndNoSYNACK:
		return detector.FailureTimeout, "no SYN-ACK in the capture"
	case EndServerReset:
		return detector.FailureReset, "the server reset the connection before its ServerHello"
	case EndServerFIN:
		return detector.FailureEOF, "the server closed the connection before its ServerHello"
	case EndClientGone:
		return detector.FailureTimeout, "the client gave up before the server answered"
	case EndTruncated:
		return detector.FailureUnknown, "bytes of the handshake are missing from the capture (snap length or lost segments)"
	case EndEvicted:
		return detector.FailureUnknown, "too many handshakes at once: this one was not followed to its end"
	}
	return detector.FailureTimeout, "no ServerHello in the capture"
}

// tlsState records what was negotiated and, when the chain is visible,
// verifies it against each store as the active probe does.
func (a *Analysis) tlsState(c *Conn, host string, g *Group, sum [32]byte) *detector.TLSState {
	sh := c.ServerHello
	st := &detector.TLSState{Version: sh.Version(), CipherSuite: sh.CipherSuite, ALPN: sh.ALPN}
	if len(c.Certificates) == 0 {
		g.ChainVisible, st.ChainHidden = false, true
		switch {
		case sh.Version() >= versionTLS13:
			g.ChainNote = "TLS 1.3 encrypts the certificate: the chain is not visible in a capture, so trust is not judged"
		case c.End == EndHandshake && c.Note == "":
			g.ChainNote = "no Certificate message (a resumed session): the chain is not visible, so trust is not judged"
		default:
			g.ChainNote = "the Certificate message is not in the capture, so trust is not judged"
		}
		return st
	}
	chain, err := a.parseChain(c.Certificates, sum)
	if err != nil {
		g.ChainVisible, st.ChainHidden = false, true
		g.ChainNote = "the certificates do not parse: " + err.Error()
		return st
	}
	st.Chain = chain
	at := c.Start
	if a.Now != nil {
		at = a.Now()
	}
	st.NameMatch = chain[0].VerifyHostname(host) == nil
	st.Public = trust.Verify(chain, a.PublicRoots, at)
	st.System = trust.Verify(chain, a.SystemRoots, at)
	return st
}

func (a *Analysis) parseChain(ders [][]byte, sum [32]byte) ([]*x509.Certificate, error) {
	if c, ok := a.chains[sum]; ok {
		return c, nil
	}
	chain := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		cert, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		chain = append(chain, cert)
	}
	a.chains[sum] = chain
	return chain, nil
}
