//go:build linux

package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Git over SSH in the lab: a real OpenSSH sshd answers for github.com on
// port 22 in the internet namespace, and for the service's fallback
// endpoint on an address of its own; the router may redirect
// port 22 to a second sshd with another host key (an interceptor answering
// SSH in the host's place), or refuse it (a firewall that blocks SSH). The
// compiled mitmwatch must tell the three apart with the host's published
// key as its pin.

// sshd is OpenSSH's server; it must be started by its absolute path.
const sshd = "/usr/sbin/sshd"

// SSHFallbackAddr is the fallback endpoint's address (ssh.github.com's role),
// in the internet namespace; SSHFallbackPort its port, which stands for
// 443: the origins hold port 443 on every address of that namespace.
var SSHFallbackAddr = netip.MustParseAddr("198.19.22.1")

const (
	SSHFallbackPort    = 4443
	sshInterceptorPort = 2222 // the router's sshd, behind the redirect of port 22
)

// SSHScenario is one situation of Git over SSH: what to set up, and what
// `mitmwatch check` must report for the SSH target.
type SSHScenario struct {
	Name     string
	Doc      string
	Setup    func(l *Lab, real SSHKey) error
	ExitCode int
	Verdict  string
	Reason   string // a finding reason the target must have; "" for none
}

// SSHScenarios are the SSH situations, each on a fresh lab.
var SSHScenarios = []SSHScenario{
	{Name: "ssh-clean", Doc: "sshd with the host's key on github.com:22; nothing in the way",
		Setup:    func(l *Lab, real SSHKey) error { return l.startSSHOrigins(real) },
		ExitCode: 0, Verdict: "ok"},
	{Name: "ssh-interceptor", Doc: "the router redirects port 22 to its own sshd, with another host key",
		Setup: func(l *Lab, real SSHKey) error {
			if err := l.startSSHOrigins(real); err != nil {
				return err
			}
			mitm, err := l.NewSSHKey("ssh-interceptor")
			if err != nil {
				return err
			}
			if _, err := l.StartSSHD(l.Router, "sshd-interceptor", netip.AddrPortFrom(RouterAddr, sshInterceptorPort), mitm); err != nil {
				return err
			}
			return l.nft("ssh-redirect.nft", fmt.Sprintf(`table ip netlab_ssh {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "r0" tcp dport 22 redirect to :%d
	}
}
`, sshInterceptorPort))
		},
		ExitCode: 1, Verdict: "intercepted", Reason: "ssh-host-key-mismatch"},
	{Name: "ssh-port-blocked", Doc: "the router refuses port 22 with a reset; the fallback endpoint answers",
		Setup: func(l *Lab, real SSHKey) error {
			if err := l.startSSHOrigins(real); err != nil {
				return err
			}
			return l.nft("ssh-block.nft", `table ip netlab_ssh {
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "r0" tcp dport 22 reject with tcp reset
	}
}
`)
		},
		ExitCode: 1, Verdict: "blocked", Reason: "ssh-port-blocked"},
}

// SSHKey is a host key the lab generated with ssh-keygen, and the
// fingerprint ssh-keygen prints for it: the pin, computed by OpenSSH
// rather than by mitmwatch.
type SSHKey struct {
	Path        string
	Fingerprint string // "SHA256:..."
}

// NewSSHKey generates an Ed25519 host key in the lab's directory.
func (l *Lab) NewSSHKey(name string) (SSHKey, error) {
	path := filepath.Join(l.Dir, name)
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netlab", "-f", path); err != nil {
		return SSHKey{}, err
	}
	out, err := output("ssh-keygen", "-l", "-E", "sha256", "-f", path+".pub")
	if err != nil {
		return SSHKey{}, err
	}
	f := strings.Fields(out)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		return SSHKey{}, fmt.Errorf("ssh-keygen -l: unexpected output %q", out)
	}
	return SSHKey{Path: path, Fingerprint: f[1]}, nil
}

// StartSSHD runs OpenSSH's sshd in ns on listen with key as its only host
// key. It authenticates nobody: the probe never gets that far.
func (l *Lab) StartSSHD(ns, label string, listen netip.AddrPort, key SSHKey) (*Proc, error) {
	// sshd's privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication no
PermitRootLogin no
LogLevel VERBOSE
`, listen, key.Path)
	path, err := l.WriteFile(label+".conf", []byte(conf))
	if err != nil {
		return nil, err
	}
	p, err := l.Start(ns, label, nil, sshd, "-D", "-e", "-f", path)
	if err != nil {
		return nil, err
	}
	return p, waitListening(ns, listen.String(), p)
}

// startSSHOrigins serves SSH with the host's key where the host is:
// github.com's origin address on 22, and the fallback endpoint.
func (l *Lab) startSSHOrigins(real SSHKey) error {
	if err := run("ip", "-n", l.Internet, "addr", "add", SSHFallbackAddr.String()+"/32", "dev", "lo"); err != nil {
		return err
	}
	if _, err := l.StartSSHD(l.Internet, "sshd-origin", netip.AddrPortFrom(l.Addrs["github.com"], 22), real); err != nil {
		return err
	}
	_, err := l.StartSSHD(l.Internet, "sshd-fallback", netip.AddrPortFrom(SSHFallbackAddr, SSHFallbackPort), real)
	return err
}

// nft loads a ruleset into the router.
func (l *Lab) nft(name, rules string) error {
	path, err := l.WriteFile(name, []byte(rules))
	if err != nil {
		return err
	}
	return inNS(l.Router, "nft", "-f", path)
}

// WriteSSHRules writes the client's rules.yaml for the SSH scenarios: one
// target, github.com over SSH, pinned to pin, with the fallback endpoint;
// nothing else probed, no resolver outside the lab, no grading.
func (l *Lab) WriteSSHRules(pin string) (string, error) {
	rules := fmt.Sprintf(`toolchain: none
probe:
  timeout: 10s
dns:
  reference_resolvers: []
  canary: false
grade:
  enabled: never
targets:
  - host: github.com
    protocol: ssh
    fallback: "%s"
    expect:
      ssh_host_key_sha256: [%q]
`, netip.AddrPortFrom(SSHFallbackAddr, SSHFallbackPort), pin)
	var err error
	if l.Rules, err = l.WriteFile("ssh-rules.yaml", []byte(rules)); err != nil {
		return "", err
	}
	return l.Rules, l.record.save(l)
}

// UpSSH brings a fresh lab up in the SSH scenario s, with the host's key
// generated and the client's rules written.
func UpSSH(s SSHScenario) (*Lab, SSHKey, error) {
	l, err := New(Options{})
	if err != nil {
		return nil, SSHKey{}, err
	}
	l.Scenario = s.Name
	fail := func(err error) (*Lab, SSHKey, error) {
		return nil, SSHKey{}, fmt.Errorf("netlab: scenario %s: %w (and closing: %v)", s.Name, err, l.Close())
	}
	real, err := l.NewSSHKey("ssh-host")
	if err != nil {
		return fail(err)
	}
	if err := s.Setup(l, real); err != nil {
		return fail(err)
	}
	if _, err := l.WriteSSHRules(real.Fingerprint); err != nil {
		return fail(err)
	}
	return l, real, nil
}

// MissingSSHTools lists what the SSH scenarios need that is not installed.
func MissingSSHTools() []string {
	var out []string
	if _, err := os.Stat(sshd); err != nil {
		out = append(out, "sshd (openssh-server)")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		out = append(out, "ssh-keygen (openssh-client)")
	}
	return out
}

// sshCheckWithin bounds an SSH scenario's check: the fallback is tried
// within the probe's timeout, so a refused port costs little.
const sshCheckWithin = 15 * time.Second
