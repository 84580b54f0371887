//go:build linux

package netlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// RulesOptions shape the rules.yaml of the client.
type RulesOptions struct {
	// SystemExtra are PEM certificates added to the client's system store
	// after the stand-in public root: the interceptors' CAs.
	SystemExtra [][]byte
	// Approve lists CAs whose SPKI is allow-listed as approved inspection.
	Approve []*x509.Certificate
	// GradeMode is grade.enabled; empty means auto. The test hosts are
	// always the lab's (GradeHosts, ControlHost).
	GradeMode string
}

// WriteRules writes the client's rules.yaml: the stand-in public root as
// the public roots, the system store of RulesOptions, every host of Hosts as
// a target resolved through the client's resolv.conf, and no resolver or
// toolchain outside the lab. It sets Rules and adds MITMWATCH_CONFIG to
// ClientEnv.
func (l *Lab) WriteRules(opts RulesOptions) (string, error) {
	public, err := l.WriteFile("public.pem", l.PKI.PublicPEM())
	if err != nil {
		return "", err
	}
	system, err := l.WriteFile("system.pem", bytes.Join(append([][]byte{l.PKI.PublicPEM()}, opts.SystemExtra...), nil))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "toolchain: none\ntrust:\n  public_roots: %s\n  system_roots: %s\n", public, system)
	if len(opts.Approve) > 0 {
		b.WriteString("allow:\n  inspection_ca_spki_sha256:\n")
		for _, c := range opts.Approve {
			fmt.Fprintf(&b, "    - %s\n", SPKI(c))
		}
	}
	b.WriteString("probe:\n  timeout: 10s\ndns:\n  reference_resolvers: []\n  canary: false\n")
	writeGrade(&b, opts.GradeMode)
	b.WriteString("targets:\n")
	for _, h := range Hosts {
		fmt.Fprintf(&b, "  - host: %s\n", h)
	}
	if l.Rules, err = l.WriteFile("rules.yaml", []byte(b.String())); err != nil {
		return "", err
	}
	l.ClientEnv = append(l.ClientEnv, "MITMWATCH_CONFIG="+l.Rules)
	return l.Rules, l.record.save(l)
}

// SPKI is the base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as
// rules.yaml writes pins.
func SPKI(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Report is what `mitmwatch check -o json` printed, and how it exited.
type Report struct {
	ExitCode int
	Stderr   string
	Elapsed  time.Duration  // how long the check ran
	Targets  []TargetReport `json:"targets"`
	// Interceptors are the graded interceptors; none when nothing was
	// intercepted.
	Interceptors []InterceptorReport `json:"interceptors"`
}

// TargetReport is the part of a target's JSON the scenarios judge.
type TargetReport struct {
	Host    string `json:"host"`
	Verdict string `json:"verdict"`
	Product string `json:"product"`
	Path    string `json:"path"`
	Failure string `json:"failure"`
	// ConnectMS is the TCP connect time, HandshakeMS the TLS handshake's.
	ConnectMS   float64 `json:"connect_ms"`
	HandshakeMS float64 `json:"handshake_ms"`
	Findings    []struct {
		Reason string `json:"reason"`
	} `json:"findings"`
	// PathTrace and Control are kept as sent, for failure messages.
	PathTrace json.RawMessage `json:"path_trace"`
	Control   json.RawMessage `json:"control"`
}

// InterceptorReport is the part of a graded interceptor's JSON the
// scenarios judge.
type InterceptorReport struct {
	CASPKI   string   `json:"ca_spki_sha256"`
	Path     string   `json:"path"`
	Product  string   `json:"product"`
	Approved bool     `json:"approved"`
	Targets  []string `json:"targets"`
	Grade    string   `json:"grade"`
	Checks   []struct {
		Check  string `json:"check"`
		Result string `json:"result"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

// Reasons lists the target's finding reasons.
func (t TargetReport) Reasons() []string {
	var out []string
	for _, f := range t.Findings {
		out = append(out, f.Reason)
	}
	return out
}

// checkTimeout bounds one run of mitmwatch check.
const checkTimeout = 90 * time.Second

// Check runs the compiled mitmwatch binary's check in the client
// namespace, with the client's environment only, and decodes its report.
func (l *Lab) Check(bin string) (*Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Client, bin,
		"check", "--config", l.Rules, "--output", "json", "--no-audit", "--no-toolchain")
	cmd.Env = l.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := &Report{Stderr: stderr.String(), Elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("mitmwatch check: %w: %s", err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), r); err != nil {
		return r, fmt.Errorf("mitmwatch check (exit %d): %w in %q; stderr %s", r.ExitCode, err, stdout.String(), stderr.String())
	}
	return r, nil
}

// Env is the whole environment of a client program: PATH, HOME and
// ClientEnv.
func (l *Lab) Env() []string {
	return append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + l.Dir}, l.ClientEnv...)
}

// proxyURL is the client's HTTPS_PROXY, nil when it has none.
func (l *Lab) proxyURL() (*url.URL, error) {
	for _, kv := range l.ClientEnv {
		if v, ok := strings.CutPrefix(kv, "HTTPS_PROXY="); ok {
			return url.Parse(v)
		}
	}
	return nil, nil
}

// Chains connects from the client namespace to every host, the way the
// client is set up to (directly, or with CONNECT through its HTTPS_PROXY),
// and returns the chain each presented, unverified: the evidence of what a
// middlebox forges.
func (l *Lab) Chains() (map[string][]*x509.Certificate, error) {
	proxy, err := l.proxyURL()
	if err != nil {
		return nil, err
	}
	out := map[string][]*x509.Certificate{}
	for _, h := range Hosts {
		var chain []*x509.Certificate
		err := Do(l.Client, func() (err error) {
			chain, err = presentedChain(h, netip.AddrPortFrom(l.Addrs[h], 443).String(), proxy)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h, err)
		}
		out[h] = chain
	}
	return out, nil
}

// ChainRoot is the CA that completes the chains the client is presented:
// the interceptor's when it forges them, else the stand-in public root.
func (l *Lab) ChainRoot() *x509.Certificate {
	if l.Interceptor != nil && l.Interceptor.CA != nil {
		return l.Interceptor.CA
	}
	return l.PKI.PublicRoot.Cert
}

// VerifyGenuine checks that every chain is an origin's own: it verifies,
// for its host, up to the stand-in public root.
func (l *Lab) VerifyGenuine(chains map[string][]*x509.Certificate) error {
	roots := x509.NewCertPool()
	roots.AddCert(l.PKI.PublicRoot.Cert)
	var errs []error
	for _, h := range Hosts {
		chain := chains[h]
		if len(chain) == 0 {
			errs = append(errs, fmt.Errorf("%s: no chain", h))
			continue
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: h, Roots: roots, Intermediates: inter}); err != nil {
			errs = append(errs, fmt.Errorf("%s: not the genuine chain: %w", h, err))
		}
	}
	return errors.Join(errs...)
}

// presentedChain runs a TLS handshake for host with addr (or through
// proxy) and returns the presented certificates.
func presentedChain(host, addr string, proxy *url.URL) ([]*x509.Certificate, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	dial := addr
	if proxy != nil {
		dial = proxy.Host
	}
	c, err := d.Dial("tcp", dial)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if proxy != nil {
		target := net.JoinHostPort(host, "443")
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return nil, fmt.Errorf("CONNECT: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || br.Buffered() > 0 {
			return nil, fmt.Errorf("CONNECT: %s", resp.Status)
		}
	}
	// Verification is not the point here: the forged chain is.
	tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates, nil
}
