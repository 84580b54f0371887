package config

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mitmwatch/mitmwatch/grade"
)

// Grade is the grade: section of rules.yaml: whether and how often an
// interceptor found on a path is graded, and the test hosts it is graded
// with. Parse applies the defaults (auto, the public test hosts); the zero
// value grades nothing.
type Grade struct {
	Mode GradeMode
	// Interval is how often `run` grades an interceptor again.
	Interval time.Duration
	// TestHosts have certificates broken on purpose, in the order written;
	// each key names its check ("upstream-" + key).
	TestHosts []grade.TestHost
	// Control is a host of the test hosts' domain with a valid
	// certificate: whether the interceptor intercepts it tells a test host
	// it passes through from one it lets by. Nil: none.
	Control *grade.TestHost
}

// GradeMode says when interceptors are graded.
type GradeMode string

// The modes of grade.enabled.
const (
	// GradeAuto grades only when a target is intercepted or inspected:
	// a path nothing intercepts costs no handshake.
	GradeAuto GradeMode = "auto"
	// GradeAlways also probes the control and the test hosts when no
	// target is intercepted, and grades an interceptor they reveal.
	GradeAlways GradeMode = "always"
	GradeNever  GradeMode = "never"
)

// DefaultGradeInterval is how often `run` grades an interceptor again:
// an interceptor's configuration changes far less often than a path.
const DefaultGradeInterval = time.Hour

// DefaultTestHosts are the public test hosts browser and vendor teams use,
// each broken the way its key says; DefaultControl is their domain's valid
// host. An organisation can point grade.test_hosts at its own.
var (
	DefaultTestHosts = []grade.TestHost{
		{Key: "expired", Host: "expired.badssl.com", Port: 443},
		{Key: "self-signed", Host: "self-signed.badssl.com", Port: 443},
		{Key: "untrusted-root", Host: "untrusted-root.badssl.com", Port: 443},
		{Key: "wrong-host", Host: "wrong.host.badssl.com", Port: 443},
	}
	DefaultControl = grade.TestHost{Key: "control", Host: "badssl.com", Port: 443}
)

// defaultGrade is the grade section of a rules.yaml that has none.
func defaultGrade() Grade {
	control := DefaultControl
	return Grade{Mode: GradeAuto, Interval: DefaultGradeInterval, TestHosts: append([]grade.TestHost(nil), DefaultTestHosts...), Control: &control}
}

// maxTestKey bounds a test host's key: it names a check in reports and a
// label value in metrics.
const maxTestKey = 32

func parseGradeMode(s string) (GradeMode, string) {
	switch m := GradeMode(s); m {
	case GradeAuto, GradeAlways, GradeNever:
		return m, ""
	}
	return "", fmt.Sprintf(`unknown mode %q (want "auto", "always" or "never")`, s)
}

// parseTestKey reads a key of grade.test_hosts: lower-case letters, digits
// and dashes, as check names and metric labels want.
func parseTestKey(s string) (string, string) {
	ok := s != "" && len(s) <= maxTestKey && s[0] != '-'
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
	}
	if !ok {
		return "", fmt.Sprintf("invalid test host key %q (want 1 to %d lower-case letters, digits and dashes, such as \"expired\")", s, maxTestKey)
	}
	return s, ""
}

// parseTestHost reads "host:port" or "host" (port 443).
func parseTestHost(s string) (grade.TestHost, string) {
	bad := fmt.Sprintf(`invalid test host %q (want "host:port" with a port from 1 to 65535, e.g. "expired.badssl.com:443")`, s)
	host, port := s, DefaultPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return grade.TestHost{}, bad
		}
		host, port = h, n
	}
	h, problem := parseHost(host)
	if problem != "" {
		return grade.TestHost{}, bad
	}
	return grade.TestHost{Host: h, Port: port}, ""
}

// testHosts decodes grade.test_hosts: a mapping from a check's key to a
// test host, kept in the order written. An empty mapping means none.
func (d *decoder) testHosts(n *yaml.Node, path string) []grade.TestHost {
	if n.Kind != yaml.MappingNode {
		d.wrongKind(n, path, "a mapping of keys to test hosts")
		return nil
	}
	out := []grade.TestHost{}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), d.resolve(n.Content[i+1])
		key, ok := d.scalar(k, path)
		if !ok {
			continue
		}
		p := join(path, key)
		if first, dup := seen[key]; dup {
			d.errorf(k.Line, p, "duplicate field (first at line %d)", first)
			continue
		}
		seen[key] = k.Line
		if _, problem := parseTestKey(key); problem != "" {
			d.errorf(k.Line, p, "%s", problem)
			continue
		}
		th, ok := one(d, v, p, parseTestHost)
		if !ok {
			continue
		}
		th.Key = key
		out = append(out, th)
	}
	return out
}

// control decodes grade.control: a test host, or "none".
func (d *decoder) control(v *yaml.Node, path string) {
	if s, ok := d.scalar(v, path); ok && s == "none" {
		d.cfg.Grade.Control = nil
		return
	}
	if th, ok := one(d, v, path, parseTestHost); ok {
		th.Key = DefaultControl.Key
		d.cfg.Grade.Control = &th
	}
}
