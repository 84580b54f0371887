package detector

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// This file holds the rule for an SSH target. SSH has no PKI: the host key
// is all that says who answered, so a key that matches none of the pins is
// the SSH form of a forged certificate, and, as for TLS, a failure alone is
// never a block: only a control (the service's fallback endpoint) answering
// where the port did not makes it one.
//
//	a host key matching no pin (without pins: no learned key)  → ssh-host-key-mismatch (critical): intercepted
//	a host key and nothing to compare it with                   → ssh-host-key-unverified (info)
//	a block page on the SSH port                                → block-page (critical): blocked
//	anything else that is not SSH on the port                   → ssh-not-ssh (critical): plaintext
//	no SSH answer, the fallback endpoint answered SSH           → ssh-port-blocked (critical): blocked
//	no SSH answer, no fallback or it failed too                 → unreachable (info)

// sshFindings judges what an SSH probe saw.
func sshFindings(obs Observation, exp Expectation) []Finding {
	st := obs.SSH
	if st == nil {
		st = &SSHState{}
	}
	if st.HostKey != nil {
		return hostKeyFindings(obs.HostPort(), st.HostKey, exp)
	}
	if obs.Failure == FailureNotSSH {
		return notSSHFindings(obs)
	}
	detail := string(obs.Failure)
	if obs.FailureDetail != "" {
		detail += ": " + obs.FailureDetail
	}
	fb := st.Fallback
	if !fb.Answered() {
		if fb != nil {
			detail += fmt.Sprintf("; the fallback endpoint %s failed too (%s)", fb.Endpoint, fb.Failure)
		}
		return []Finding{{ReasonUnreachable, Info, detail}}
	}
	fs := []Finding{{ReasonSSHPortBlocked, Critical, fmt.Sprintf(
		"no SSH answer on port %d (%s), while the same service at %s answered SSH (%s): something on the path blocks the port",
		obs.Port, detail, fb.Endpoint, bannerText(fb.Banner))}}
	return append(fs, hostKeyFindings(fb.Endpoint, fb.HostKey, exp)...)
}

// hostKeyFindings compares the key the server at where showed with the
// pins, else the learned keys.
func hostKeyFindings(where string, k *SSHHostKey, exp Expectation) []Finding {
	want, source := exp.SSHHostKeys, "the pins in rules.yaml (expect.ssh_host_key_sha256)"
	if len(want) == 0 && exp.Learned != nil && len(exp.Learned.SSHHostKeys) > 0 {
		want, source = exp.Learned.SSHHostKeys, "the host keys the baseline learned"
	}
	if len(want) == 0 {
		return []Finding{{ReasonSSHHostKeyUnverified, Info, fmt.Sprintf(
			"%s showed the %s host key %s, and nothing vouches for it: pin it (expect.ssh_host_key_sha256) from the fingerprints the host publishes, or learn a baseline on a trusted network",
			where, k.Type, k.SHA256)}}
	}
	if slices.Contains(want, k.SHA256) {
		return nil
	}
	names := make([]string, len(want))
	for i, f := range want {
		names[i] = f.String()
	}
	return []Finding{{ReasonSSHHostKeyMismatch, Critical, fmt.Sprintf(
		"%s showed the %s host key %s, which matches none of %s (%s): something on the path answers SSH with its own key",
		where, k.Type, k.SHA256, source, strings.Join(names, ", "))}}
}

// notSSHFindings reads what answered the SSH port instead of SSH: a block
// page is a block, anything else speaks another protocol on the port.
func notSSHFindings(obs Observation) []Finding {
	banner := bannerText(obs.SSH.bannerOrEmpty())
	if p := obs.Plain; p != nil && (p.Status == 403 || p.Status == 451 || looksBlocked(p)) {
		return []Finding{{ReasonBlockPage, Critical, fmt.Sprintf("port %d answers SSH with HTTP %d %q: %s",
			obs.Port, p.Status, firstNonEmpty(p.Title, p.BodySnippet), banner)}}
	}
	return []Finding{{ReasonSSHNotSSH, Critical, fmt.Sprintf("port %d answered with something that is not SSH: %s", obs.Port, banner)}}
}

func (s *SSHState) bannerOrEmpty() string {
	if s == nil {
		return ""
	}
	return s.Banner
}

// bannerText quotes what a peer sent, cut to a line's worth. It is kept
// as sent: the renderers escape it for terminals and JSON.
func bannerText(b string) string {
	if b == "" {
		return "nothing before closing"
	}
	if r := []rune(b); len(r) > 120 {
		b = string(r[:120]) + "…"
	}
	return `"` + b + `"`
}

// sshRemediation is the next step for an SSH target's verdict.
func sshRemediation(v Verdict, obs Observation, findings []Finding) string {
	switch v {
	case Intercepted:
		return fmt.Sprintf("Something on the path answers SSH for %s with a host key that is not the host's: do not accept it (never StrictHostKeyChecking no or accept-new, never UserKnownHostsFile /dev/null), and do not push or fetch over SSH on this network. If the host announced a new key, compare it with the fingerprints it publishes, then update expect.ssh_host_key_sha256 or relearn the baseline.", obs.HostPort())
	case Blocked:
		if fb := obs.SSH; fb != nil && fb.Fallback.Answered() && slices.ContainsFunc(findings, func(f Finding) bool { return f.Reason == ReasonSSHPortBlocked }) {
			host, port, _ := net.SplitHostPort(fb.Fallback.Endpoint)
			return fmt.Sprintf("Port %d of %s is blocked on this network, while its documented endpoint %s answers: in ~/.ssh/config write \"Host %s\", \"Hostname %s\", \"Port %s\" (the host key is the same, and stays checked) rather than turning host key checking off.", obs.Port, obs.Host, fb.Fallback.Endpoint, obs.Host, host, port)
		}
		return fmt.Sprintf("Network policy blocks SSH to %s: ask for an allow-list entry, or use the host's HTTPS remote; do not weaken host key checking to get around it.", obs.HostPort())
	case Plaintext:
		return fmt.Sprintf("Port %d of %s is answered by something that is not SSH (the banner is in the findings): use the host's HTTPS remote or ask the network team what intercepts the port; never accept a host key you cannot check.", obs.Port, obs.Host)
	case Unreachable:
		return fmt.Sprintf("%s could not be reached over SSH (%s): check connectivity and the firewall. This is not evidence of interception.", obs.HostPort(), obs.Failure)
	case OK:
		if slices.ContainsFunc(findings, func(f Finding) bool { return f.Reason == ReasonSSHHostKeyUnverified }) {
			return fmt.Sprintf("Nothing vouches for the host key of %s: pin it in rules.yaml (expect.ssh_host_key_sha256) from the fingerprints the host publishes, or learn a baseline on a trusted network.", obs.HostPort())
		}
	}
	return ""
}
