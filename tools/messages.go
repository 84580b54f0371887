package tools

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// problem is why a chain fails for a tool, in the terms TLS libraries use.
type problem int

const (
	noProblem   problem = iota
	untrusted           // no root of the tool's store anchors the chain
	expired             // a certificate's validity ended, by this machine's clock
	notYetValid         // a certificate's validity has not begun, by this clock
	otherName           // the leaf does not name the host
	badStore            // the tool cannot load the store it is told to use
)

// shape is how the presented chain ends, which decides OpenSSL's error
// for an untrusted chain.
type shape int

const (
	issuerMissing  shape = iota // ends in a CA whose issuer was not sent
	rootPresented               // ends in a self-signed root the store lacks
	selfSignedLeaf              // the leaf alone, signed by itself
	leafAlone                   // the leaf alone, its issuer not sent
)

// verdictOn is what a tool's store says of a chain, each part separately,
// so that each library can report them in its own order.
type verdictOn struct {
	trusted bool    // a root of the store anchors the chain, at a moment it is valid
	time    problem // expired, notYetValid, or noProblem
	named   bool    // the leaf names the host
	shape   shape
	goErr   error // what crypto/x509 itself says, for Go's flavour
}

// examine verifies st's chain against a store as each library would see it.
func examine(st *detector.TLSState, host string, pool *x509.CertPool, now time.Time) verdictOn {
	v := trust.Verify(st.Chain, pool, now)
	out := verdictOn{named: st.NameMatch, shape: shapeOf(st.Chain)}
	switch {
	case v.OK():
		out.trusted = true
	case v.Failure == detector.FailureExpired:
		out.trusted = v.AtValidTime != nil && v.AtValidTime.OK()
		out.time = expired
		if from, _, ok := detector.ValidityOf(st.Chain); ok && now.Before(from) {
			out.time = notYetValid
		}
	}
	inter := x509.NewCertPool()
	for _, c := range st.Chain[1:] {
		inter.AddCert(c)
	}
	_, out.goErr = st.Chain[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: now, DNSName: host,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return out
}

// first is the problem a library reports first: OpenSSL builds the chain,
// then checks the name, then the times; Node lets OpenSSL verify and
// checks the name itself afterwards; GnuTLS's curl reports the chain and
// the times as one failure before the name.
func (v verdictOn) first(f Flavour) problem {
	switch {
	case !v.trusted:
		return untrusted
	case f == FlavourOpenSSL && !v.named:
		return otherName
	case v.time != noProblem:
		return v.time
	case !v.named:
		return otherName
	}
	return noProblem
}

// shapeOf follows the presented chain from the leaf through the
// certificates that sign one another, as OpenSSL builds it.
func shapeOf(chain []*x509.Certificate) shape {
	cur, n := chain[0], 1
	for !selfSigned(cur) {
		next := signer(cur, chain[1:])
		if next == nil {
			break
		}
		cur, n = next, n+1
	}
	switch {
	case n == 1 && selfSigned(cur):
		return selfSignedLeaf
	case selfSigned(cur):
		return rootPresented
	case n == 1:
		return leafAlone
	}
	return issuerMissing
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func signer(c *x509.Certificate, candidates []*x509.Certificate) *x509.Certificate {
	for _, p := range candidates {
		if p != c && bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

// openSSLReason is X509_verify_cert_error_string's text for a problem;
// OpenSSL 1.1 wrote "self signed" where 3.0 writes "self-signed".
func openSSLReason(p problem, s shape, v3 bool) string {
	self := "self-signed"
	if !v3 {
		self = "self signed"
	}
	switch p {
	case expired:
		return "certificate has expired"
	case notYetValid:
		return "certificate is not yet valid"
	}
	switch s {
	case rootPresented:
		return self + " certificate in certificate chain"
	case selfSignedLeaf:
		return self + " certificate"
	case leafAlone:
		return "unable to verify the first certificate"
	}
	return "unable to get local issuer certificate"
}

// nodeCode is the error code Node gives the same problem.
func nodeCode(p problem, s shape) string {
	switch p {
	case expired:
		return "CERT_HAS_EXPIRED"
	case notYetValid:
		return "CERT_NOT_YET_VALID"
	}
	switch s {
	case rootPresented:
		return "SELF_SIGNED_CERT_IN_CHAIN"
	case selfSignedLeaf:
		return "DEPTH_ZERO_SELF_SIGNED_CERT"
	case leafAlone:
		return "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
	}
	return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
}

// message is what the tool prints when it refuses the chain for p, as
// close to its own words as its output allows: every tool's message is a
// string that appears in its output, except npm's, which is the error code,
// a colon, and the reason npm gives on the next line.
func message(t Tool, p problem, v verdictOn, leaf *x509.Certificate, h Host, store Store) string {
	switch t.Flavour {
	case FlavourGo:
		if p == badStore {
			return store.Err
		}
		return "tls: failed to verify certificate: " + v.goErr.Error()
	case FlavourNode:
		switch p {
		case badStore:
			return store.Err
		case otherName:
			return fmt.Sprintf("ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: Host: %s. is not in the cert's altnames: %s", h.Host, altNames(leaf))
		}
		return nodeCode(p, v.shape) + ": " + openSSLReason(p, v.shape, t.OpenSSL3)
	case FlavourGnuTLS:
		switch p {
		case badStore:
			return store.Err
		case otherName:
			return fmt.Sprintf("SSL: certificate subject name (%s) does not match target host name '%s'", leaf.Subject.CommonName, h.Host)
		}
		cafile := "none"
		if store.By != nil && len(store.Files) > 0 {
			cafile = store.Files[0]
		}
		return "server certificate verification failed. CAfile: " + cafile + " CRLfile: none"
	}
	// OpenSSL, through Python's ssl (pip) or libcurl (cargo, git).
	if p == badStore {
		return store.Err
	}
	if t.Name == Pip {
		reason := openSSLReason(p, v.shape, t.OpenSSL3)
		if p == otherName {
			kind := "Hostname"
			if isIP(h.Host) {
				kind = "IP address"
			}
			reason = fmt.Sprintf("%s mismatch, certificate is not valid for '%s'.", kind, h.Host)
		}
		return "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: " + reason
	}
	var text string
	if p == otherName {
		text = fmt.Sprintf("SSL: no alternative certificate subject name matches target host name '%s'", h.Host)
	} else {
		text = "SSL certificate problem: " + openSSLReason(p, v.shape, t.OpenSSL3)
	}
	if t.Name == Cargo {
		return "[60] SSL peer certificate or SSH remote key was not OK (" + text + ")"
	}
	return text
}

// plainMessage is what the tool prints when a TLS port answers plain HTTP.
func plainMessage(t Tool) string {
	switch t.Flavour {
	case FlavourGo:
		return "http: server gave HTTP response to HTTPS client"
	case FlavourGnuTLS:
		return "gnutls_handshake() failed: An unexpected TLS packet was received."
	case FlavourNode:
		return "ERR_SSL_WRONG_VERSION_NUMBER: wrong version number"
	}
	if t.Name == Pip {
		return "[SSL: WRONG_VERSION_NUMBER] wrong version number"
	}
	return "wrong version number"
}

// altNames renders a leaf's names as Node's subjectaltname does.
func altNames(c *x509.Certificate) string {
	var parts []string
	for _, n := range c.DNSNames {
		parts = append(parts, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		parts = append(parts, "IP Address:"+ip.String())
	}
	return strings.Join(parts, ", ")
}
