package detector

import (
	"fmt"
	"net/url"
	"strings"
)

// blockWords are phrases block pages use; matched case-insensitively in the
// title and the start of the body.
var blockWords = []string{"access denied", "blocked", "forbidden", "not allowed", "web filter", "policy"}

// classifyFailure judges an attempt that completed no TLS handshake. A plain
// timeout, refusal or reset is no evidence of interference: the host is
// unreachable, and the report says so without alarm — unless a control
// handshake to the same address, naming another server, was answered.
func classifyFailure(obs Observation) []Finding {
	var fs []Finding
	if obs.Plain != nil {
		fs = append(fs, plainFindings(obs)...)
		if len(fs) > 0 {
			return fs
		}
	}
	switch obs.Failure {
	case FailureNotTLS:
		return []Finding{{ReasonPlaintext, Critical, "the TLS port answered with something that is not TLS: " + obs.FailureDetail}}
	case FailureDowngrade:
		return []Finding{{ReasonDowngradeSentinel, Critical,
			"the server signalled a TLS 1.3 downgrade (RFC 8446 sentinel): a middlebox rewrote the ClientHello without terminating TLS"}}
	case FailureProtocolVersion:
		return []Finding{{ReasonVersionBelow, Critical,
			"the path refuses every TLS version from 1.0 to 1.3 that was offered: " + obs.FailureDetail}}
	}
	if fs := sniFindings(obs); fs != nil {
		return fs
	}
	detail := string(obs.Failure)
	if obs.FailureDetail != "" {
		detail += ": " + obs.FailureDetail
	}
	return []Finding{{ReasonUnreachable, Info, detail}}
}

// plainFindings reads what a plain-HTTP speaker said on the TLS port (or a
// proxy said to CONNECT): a redirect to a login page, a block page, or
// plain content.
func plainFindings(obs Observation) []Finding {
	p := obs.Plain
	var fs []Finding
	if len(p.ProxyHeaders) > 0 {
		fs = append(fs, Finding{ReasonProxyHeaders, Info, "proxy headers: " + strings.Join(p.ProxyHeaders, "; ")})
	}
	where := "port " + fmt.Sprint(obs.Port)
	if obs.Failure == FailureProxy {
		where = "the proxy"
	}
	switch {
	case obs.Failure == FailureProxy && p.Status == 407:
		// Squid titles its login page "Cache Access Denied": a proxy
		// asking for credentials is not a block.
		return append(fs, Finding{ReasonUnreachable, Info,
			"the proxy requires authentication (HTTP 407): set the credentials in HTTPS_PROXY"})
	case p.Status >= 300 && p.Status < 400 && p.Location != "" && redirectsAway(p.Location, obs.Host):
		fs = append(fs, Finding{ReasonPortalRedirect, Critical,
			fmt.Sprintf("%s answers HTTP %d redirecting to %s", where, p.Status, p.Location)})
	case p.Status == 403 || p.Status == 451 || looksBlocked(p):
		fs = append(fs, Finding{ReasonBlockPage, Critical,
			fmt.Sprintf("%s answers HTTP %d %q", where, p.Status, firstNonEmpty(p.Title, p.BodySnippet))})
	case obs.Failure == FailureProxy:
		// A proxy that refuses for another reason (auth, upstream down)
		// is a reachability problem.
		return append(fs, Finding{ReasonUnreachable, Info,
			fmt.Sprintf("the proxy refused CONNECT with HTTP %d", p.Status)})
	default:
		fs = append(fs, Finding{ReasonPlaintext, Critical,
			fmt.Sprintf("%s speaks plain HTTP (status %d %q) instead of TLS", where, p.Status, firstNonEmpty(p.Title, p.BodySnippet))})
	}
	return fs
}

func redirectsAway(loc, host string) bool {
	u, err := url.Parse(loc)
	if err != nil {
		return false
	}
	return u.Host != "" && !strings.EqualFold(u.Hostname(), host)
}

func looksBlocked(p *HTTPAnswer) bool {
	text := strings.ToLower(p.Title + " " + p.BodySnippet)
	for _, w := range blockWords {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			if len(v) > 120 {
				v = v[:120] + "…"
			}
			return v
		}
	}
	return ""
}
