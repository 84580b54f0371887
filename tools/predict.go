package tools

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Context is what every prediction of a round shares.
type Context struct {
	Now time.Time // the clock the tools will verify with
	// Approved are the inspection CAs the organisation approved
	// (allow.inspection_ca_spki_sha256): a fix installs them without
	// a caveat.
	Approved []detector.SPKI
	// CAFile is where the CAs fixes install were written (--write-ca);
	// empty: fixes name DefaultCAFile and say how to write it.
	CAFile string
	// SystemBundle is the system store's bundle file. A tool that
	// replaces its store (pip's cert, npm's cafile) is pointed at it when
	// it holds the CA.
	SystemBundle string
	// SystemInstall adds the CA file (its %s) to the system store, as
	// this machine's distribution does it.
	SystemInstall string
}

// DefaultCAFile is the file fixes name when --write-ca was not given.
const DefaultCAFile = "mitmwatch-ca.pem"

// Prediction is one tool's outcome for one host.
type Prediction struct {
	Tool    Name
	Host    Host
	Outcome Outcome
	Store   string // the store that decided, as Store.Description
	Error   string // what the tool prints; empty when it works
	Fix     string // the change that makes it work with verification on
	Steps   []Step // Fix's changes, in order, for a person or a script to apply
	// Note says what the prediction cannot see: the tool takes another
	// path than the probe did, or the tool is not installed.
	Note string
	// CA is the certificate Steps install; nil when they install none.
	CA *x509.Certificate
}

// Predict says what tool t will do with host h, given the judged result of
// probing h (whose Obs keeps the presented chain even when it failed
// verification). It is pure: the clock is c.Now.
func Predict(t Tool, h Host, r detector.Result, c Context) Prediction {
	store := t.StoreFor(h.Host, h.Port)
	p := Prediction{Tool: t.Name, Host: h, Store: store.Description, Note: pathNote(t, r.Obs)}
	if !t.Installed() {
		p.Note = joinNotes(string(t.Name)+" is not installed here: this is what its configuration would do", p.Note)
	}
	off, plain := t.offFor(h.Host, h.Port)
	st := r.Obs.TLS
	switch {
	case h.Scheme == "http":
		return plainHTTP(p, t, h, store, nil, off, c)
	case st == nil && (r.Obs.Plain != nil || r.Obs.Failure == detector.FailureNotTLS):
		if plain && off != nil {
			// GOINSECURE, insecure-registries: the tool falls back to
			// plain HTTP and carries on.
			return plainHTTP(p, t, h, store, nil, off, c)
		}
		return plainHTTP(p, t, h, store, errorOf(plainMessage(t)), nil, c)
	case st == nil || len(st.Chain) == 0:
		p.Outcome = Unreachable
		p.Note = joinNotes("the probe completed no handshake ("+string(r.Obs.Failure)+"), so there is no chain to judge", p.Note)
		return p
	}
	v := examine(st, h.Host, store.PoolFor(st.Chain), c.Now)
	prob := v.first(t.Flavour)
	if store.Err != "" {
		prob = badStore
	}
	var why string
	switch {
	case off != nil:
		p.Outcome = VerificationOff
		why, p.Steps, p.CA = offFix(t, h, store, off, prob, r, c)
	case prob == noProblem:
		p.Outcome = Verifies
		return p
	default:
		p.Outcome, p.Error = Fails, message(t, prob, v, st.Chain[0], h, store)
		why, p.Steps, p.CA = fixFor(t, h, store, prob, r, c)
	}
	p.Fix = render(why, p.Steps)
	return p
}

// errorOf returns a pointer to a message, for plainHTTP's optional error.
func errorOf(s string) *string { return &s }

// offFor is the setting that turns verification off for host:port, and
// whether the tool then also falls back to plain HTTP.
func (t Tool) offFor(host string, port int) (*Setting, bool) {
	if o, ok := t.override(host, port); ok && o.Off != nil {
		return o.Off, o.Plain
	}
	return t.Verify, false
}

// proxyFor is the proxy the tool uses for host, as host:port; empty for a
// direct connection.
func (t Tool) proxyFor(host string) string {
	if t.Proxy == nil || t.Proxy.Value == "" {
		return ""
	}
	u, err := url.Parse(t.Proxy.Value)
	if err != nil || u.Host == "" {
		if u, err = url.Parse("http://" + t.Proxy.Value); err != nil {
			return ""
		}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// pathNote says when the tool reaches the host another way than the probe
// did: the chain it meets may then differ.
func pathNote(t Tool, o detector.Observation) string {
	mine := t.proxyFor(o.Host)
	switch {
	case mine == "" && o.Path.Proxied():
		return fmt.Sprintf("the probe went through proxy %s, %s goes direct: its chain may differ", o.Path.Proxy, t.Name)
	case mine != "" && !o.Path.Proxied():
		return fmt.Sprintf("%s goes through proxy %s (%s), the probe went direct: its chain may differ", t.Name, mine, t.Proxy.Source)
	case mine != "" && !strings.EqualFold(mine, o.Path.Proxy):
		return fmt.Sprintf("%s goes through proxy %s (%s), the probe through %s: its chain may differ", t.Name, mine, t.Proxy.Source, o.Path.Proxy)
	}
	return ""
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// trustKind says why a fix may give a tool a CA.
type trustKind int

const (
	noTrust    trustKind = iota // nothing on the machine vouches for the chain
	approvedCA                  // allow.inspection_ca_spki_sha256 names it
	systemCA                    // the system store trusts it, the public roots do not
	publicCA                    // a public root the tool's own store lacks
)

// installable is the CA a fix may give the tool, and why: one the
// organisation approved, one the system store already trusts for this
// chain (the organisation put it there), or a public root the tool's copy
// lacks. A chain nothing on the machine vouches for gets no CA: installing
// it would trust whoever presents it.
func installable(st *detector.TLSState, c Context) (*x509.Certificate, trustKind) {
	for _, k := range detector.CAs(st) {
		if slices.Contains(c.Approved, detector.SPKIOf(k)) {
			return k, approvedCA
		}
	}
	for _, v := range []detector.Verification{st.Public, st.System} {
		if v.Failure == detector.FailureExpired && v.AtValidTime != nil {
			v = *v.AtValidTime
		}
		if v.OK() && len(v.Chains) > 0 {
			ch := v.Chains[0]
			if st.Public.OK() || (st.Public.AtValidTime != nil && st.Public.AtValidTime.OK()) {
				return ch[len(ch)-1], publicCA
			}
			return ch[len(ch)-1], systemCA
		}
	}
	return nil, noTrust
}
