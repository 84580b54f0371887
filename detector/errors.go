package detector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// failer is an error that knows its place in the vocabulary: a dialer's
// own error (a proxy refusing CONNECT) says what it is rather than being
// guessed from its text.
type failer interface {
	error
	Failure() Failure
}

// FailureOf maps a network, TLS or verification error to the failure
// vocabulary. It is the one place that inspects error values, so the rest of
// mitmwatch deals in data; every dialer (probe, resolver, passive's
// verification) classifies through it.
func FailureOf(err error) Failure {
	if err == nil {
		return FailureNone
	}
	var (
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		dnsErr   *net.DNSError
	)
	var known failer
	switch {
	case errors.As(err, &known):
		return known.Failure()
	case errors.As(err, &recErr):
		return FailureNotTLS
	case errors.As(err, &unknown):
		return FailureUnknownAuthority
	case errors.As(err, &hostErr):
		return FailureHostnameMismatch
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return FailureExpired
		}
		return FailureInvalidCert
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return FailureTimeout
		}
		return FailureDNS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return FailureTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailureRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FailureReset
	case errors.Is(err, syscall.ENETUNREACH):
		return FailureNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return FailureHostUnreachable
	case errors.As(err, &alertErr): // only QUIC wraps alerts this way; TCP alerts are matched by text below
		if alertErr == 70 { // protocol_version
			return FailureProtocolVersion
		}
		return FailureTLSAlert
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return FailureEOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return FailureTimeout
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "downgrade attempt detected"):
		return FailureDowngrade
	case strings.Contains(msg, "protocol version not supported"), strings.Contains(msg, "no supported versions"),
		strings.Contains(msg, "unsupported protocol version"):
		return FailureProtocolVersion
	case strings.Contains(msg, "remote error: tls:"):
		return FailureTLSAlert
	}
	return FailureUnknown
}
