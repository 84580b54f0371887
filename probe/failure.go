package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Classify maps a network, TLS or verification error to the failure
// vocabulary. It is the one place that inspects error values, so the rest of
// mitmwatch deals in data.
func Classify(err error) detector.Failure {
	if err == nil {
		return detector.FailureNone
	}
	var (
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		dnsErr   *net.DNSError
	)
	var proxyErr *ProxyError
	switch {
	case errors.As(err, &proxyErr):
		return detector.FailureProxy
	case errors.As(err, &recErr):
		return detector.FailureNotTLS
	case errors.As(err, &unknown):
		return detector.FailureUnknownAuthority
	case errors.As(err, &hostErr):
		return detector.FailureHostnameMismatch
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return detector.FailureExpired
		}
		return detector.FailureInvalidCert
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return detector.FailureTimeout
		}
		return detector.FailureDNS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return detector.FailureTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return detector.FailureRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return detector.FailureReset
	case errors.Is(err, syscall.ENETUNREACH):
		return detector.FailureNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return detector.FailureHostUnreachable
	case errors.As(err, &alertErr): // only QUIC wraps alerts this way; TCP alerts are matched by text below
		if alertErr == 70 { // protocol_version
			return detector.FailureProtocolVersion
		}
		return detector.FailureTLSAlert
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return detector.FailureEOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return detector.FailureTimeout
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "downgrade attempt detected"):
		return detector.FailureDowngrade
	case strings.Contains(msg, "protocol version not supported"), strings.Contains(msg, "no supported versions"),
		strings.Contains(msg, "unsupported protocol version"):
		return detector.FailureProtocolVersion
	case strings.Contains(msg, "remote error: tls:"):
		return detector.FailureTLSAlert
	}
	return detector.FailureUnknown
}

var timeZero time.Time

func netipAddrPort(a net.Addr) (netip.AddrPort, error) {
	return netip.ParseAddrPort(a.String())
}
