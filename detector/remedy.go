package detector

import (
	"fmt"
	"slices"
)

// genuineTLS reports whether the chain may be called the host's own: it
// verifies against the public roots for the host's name, and nothing but
// the path doubts it (pins and a baseline, where there are any, matched).
func genuineTLS(obs Observation, findings []Finding) bool {
	if obs.TLS == nil || !obs.TLS.Public.OK() || !obs.TLS.NameMatch {
		return false
	}
	return !slices.ContainsFunc(findings, func(f Finding) bool {
		return f.Severity >= Warning && f.Reason != ReasonTCPTerminatedNearby && f.Reason != ReasonTLSAnsweredEarly && f.Reason != ReasonRTTSplit
	})
}

// caInstallHint is the fix people need instead of the one they copy: give
// each tool the CA, never switch verification off.
const caInstallHint = "install that CA for each tool instead of disabling verification: SSL_CERT_FILE (Go, curl, OpenSSL), GIT_SSL_CAINFO (git), NODE_EXTRA_CA_CERTS (npm, node), REQUESTS_CA_BUNDLE (pip)"

// Remediation names the concrete next step for a verdict. The findings
// decide how much it may reassure: TLS is called genuine only when nothing
// doubts the chain.
func Remediation(v Verdict, obs Observation, product string, findings []Finding) string {
	if obs.Protocol != ProtocolTLS {
		return integrityRemediation(v, obs, findings)
	}
	who := "a middlebox"
	if product != "" {
		who = product
	}
	switch v {
	case Intercepted:
		return fmt.Sprintf("TLS to %s is terminated by %s. If it is your organisation's inspection proxy, add its CA pin to allow.inspection_ca_spki_sha256 in rules.yaml and %s; if nobody approved it, treat this network as hostile and do not send credentials over it.", obs.Host, who, caInstallHint)
	case Inspected:
		return fmt.Sprintf("Approved inspection by %s: %s.", who, caInstallHint)
	case Downgraded:
		return fmt.Sprintf("Something on the path weakens TLS to %s; ask the network team to exempt %s from inspection or to allow TLS 1.3 and h2 end to end. Do not lower the tools' minimum TLS version.", obs.Host, obs.Host)
	case Plaintext:
		return fmt.Sprintf("Port %d of %s is answered in clear text by something else: use the proxy your network requires (HTTPS_PROXY) rather than http:// URLs, GOINSECURE or GOPROXY over http.", obs.Port, obs.Host)
	case CaptivePortal:
		return "The network holds traffic behind a captive portal: log in through a browser, then run the check again."
	case Blocked:
		if h, ok := hostsBlock(obs); ok {
			return fmt.Sprintf("The hosts file blocks %s on this machine (%s), as ad blockers, security tools and malware do: if builds need %s, find who added the line and remove it.", obs.Host, h.Resolver, obs.Host)
		}
		if _, action, ok := sniAction(obs); ok {
			return fmt.Sprintf("A filter on the path %s every TLS handshake whose server name (SNI) is %s, while the same address answers a handshake for another name: this is network policy, not an outage. Ask the network team to allow %s; do not route around the filter with insecure settings.", action, obs.Host, obs.Host)
		}
		return fmt.Sprintf("Network policy blocks %s: ask for an allow-list entry; do not route around it with insecure settings.", obs.Host)
	case InvalidCert:
		if HasClockSkew(findings) {
			return "This machine's clock is wrong (see clock-skew): every certificate looks expired or not yet valid to every tool. Set the clock (timedatectl set-ntp true, or your time service) and check again; do not install CAs or turn verification off for it."
		}
		return fmt.Sprintf("The certificate of %s does not verify. If it is a private mirror, install its CA for the tools (SSL_CERT_FILE, GIT_SSL_CAINFO, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE); if it is a public host, something on the path presents a forged certificate.", obs.Host)
	case Unreachable:
		return fmt.Sprintf("%s could not be reached (%s): check connectivity, DNS and HTTPS_PROXY. This is not evidence of interception.", obs.Host, obs.Failure)
	case DNSTampered:
		text := fmt.Sprintf("The system resolver lies about %s (see the dns findings): ask who runs it why, and until then resolve through a trusted resolver (DNS over TLS or HTTPS) rather than pinning addresses in /etc/hosts.", obs.Host)
		switch {
		case obs.Failure != FailureNone:
			text += fmt.Sprintf(" The connection then failed (%s) because it went where DNS pointed: that failure is a consequence, not a second problem.", obs.Failure)
		case obs.TLS != nil && !obs.TLS.NameMatch:
			text += " The address it gave serves a certificate for another name: that is where DNS pointed, not the host."
		}
		return text
	case TransparentProxy:
		if genuineTLS(obs, findings) {
			return fmt.Sprintf("A transparent proxy terminates TCP to %s without breaking TLS: the chain verifies against the public roots and matches what is expected of the host, so integrity holds; expect the proxy's policies to apply.", obs.Host)
		}
		return fmt.Sprintf("Something on the path terminates TCP to %s and relays TLS, and the chain it passes is not confirmed as the host's own (see the warnings): compare it from a trusted network before relying on it.", obs.Host)
	case OK:
		if slices.ContainsFunc(findings, func(f Finding) bool { return f.Reason == ReasonCAChanged }) {
			return fmt.Sprintf("%s presents a publicly trusted chain from a CA the baseline did not learn. Compare it from another network and with the host's Certificate Transparency entries: the same CA everywhere is a rotation (relearn the baseline); a CA only this network sees is an interception.", obs.Host)
		}
	}
	return ""
}

// hostsBlock returns the hosts file's answer when it blocks the host with
// the unspecified address (see hostsFindings).
func hostsBlock(obs Observation) (DNSAnswer, bool) {
	for _, a := range obs.DNS {
		if a.Source == SourceHosts && slices.ContainsFunc(a.Addrs, unspecified) {
			return a, true
		}
	}
	return DNSAnswer{}, false
}
