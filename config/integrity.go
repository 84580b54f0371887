package config

import (
	"fmt"
	"net"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/toolchain"
)

// SumDB is the checksum_database section: which Go checksum database to
// check, the route to it, and how long its tree may stay the same size.
// Empty GOSUMDB and GOPROXY mean "auto": what `go env` says, read by the
// command when toolchain is auto.
type SumDB struct {
	GOSUMDB string // a GOSUMDB value, "off", or "" for auto
	GOPROXY string // a GOPROXY value, or "" for auto
	MaxAge  time.Duration
	// Source is where GOSUMDB was written ("rules.yaml:12"); empty for
	// auto.
	Source string
}

// DefaultSumDBMaxAge is how long a checksum database's tree may stay the
// same size before it is reported stale. A database that serves builds
// grows by the minute; a day without growth is a stale cache or a replay.
const DefaultSumDBMaxAge = 24 * time.Hour

// SumDBTarget makes the target that checks the database gosumdb names,
// reached through goproxy; source says where gosumdb came from. GOSUMDB=off
// names no database, yet the go command's default one is checked: its
// result is the reason to turn verification back on. A value "auto" left
// unresolved, or "off" written in rules.yaml itself, gives no target.
func SumDBTarget(cfg SumDB, gosumdb, goproxy, source string) (Target, bool, error) {
	db, off, err := sumdb.ParseGOSUMDB(gosumdb)
	switch {
	case err != nil:
		return Target{}, false, fmt.Errorf("%s: %w", source, err)
	case off:
		if db, _, err = sumdb.ParseGOSUMDB(sumdb.DefaultGOSUMDB()); err != nil {
			return Target{}, false, err
		}
		source += " (off: the go command's default database, checked to show what turning it back on gives)"
	}
	if goproxy == "" {
		goproxy = "direct"
	}
	if db.Proxies, err = sumdb.ParseGOPROXY(goproxy); err != nil {
		return Target{}, false, fmt.Errorf("%s: %w", source, err)
	}
	return Target{Host: db.Name, Port: DefaultPort, Protocol: detector.ProtocolSumDB, SumDB: &db, Source: source,
		Expect: detector.Expectation{SumDBMaxAge: cfg.MaxAge}}, true, nil
}

// parseProtocol reads a target's protocol.
func parseProtocol(s string) (detector.Protocol, string) {
	switch s {
	case "tls":
		return detector.ProtocolTLS, ""
	case "ssh":
		return detector.ProtocolSSH, ""
	}
	return "", fmt.Sprintf(`unknown protocol %q (want "tls" or "ssh")`, s)
}

// parseFallback reads an SSH target's fallback endpoint: host:port.
func parseFallback(s string) (string, string) {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		if h, problem := parseHost(host); problem == "" {
			if _, problem := parsePort(port); problem == "" {
				return net.JoinHostPort(h, port), ""
			}
		}
	}
	return "", fmt.Sprintf(`invalid fallback %q (want "host:port", e.g. "ssh.github.com:443")`, s)
}

// parseSSHFingerprint reads a host key pin as ssh-keygen -l prints it.
func parseSSHFingerprint(s string) (detector.SSHFingerprint, string) {
	f, err := detector.ParseSSHFingerprint(s)
	if err != nil {
		return f, fmt.Sprintf(`%v (want "SHA256:" and the base64 ssh-keygen -l -E sha256 prints)`, err)
	}
	return f, ""
}

// parseGOSUMDBSetting reads checksum_database.gosumdb: "auto", "off", or a
// GOSUMDB value the go command would accept.
func parseGOSUMDBSetting(s string) (string, string) {
	switch s {
	case "auto":
		return "", ""
	case "off":
		return "off", ""
	}
	if _, _, err := sumdb.ParseGOSUMDB(s); err != nil {
		return "", err.Error()
	}
	return s, ""
}

// parseGOPROXYSetting reads checksum_database.goproxy: "auto" or a GOPROXY
// value.
func parseGOPROXYSetting(s string) (string, string) {
	if s == "auto" {
		return "", ""
	}
	if _, err := sumdb.ParseGOPROXY(s); err != nil {
		return "", err.Error()
	}
	return s, ""
}

// parseMaxAge reads checksum_database.max_age: a duration, 0 for never.
func parseMaxAge(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || (d > 0 && d < time.Minute) {
		return 0, fmt.Sprintf(`invalid max_age %q (want 0 for never, or a duration of at least 1m, e.g. "24h")`, s)
	}
	return d, ""
}

// protocolLines are where a target's protocol-specific fields were
// written, for the errors about them.
type protocolLines struct{ expect, fallback int }

// checkProtocolFields reports the fields a target's protocol does not
// use: an SSH target has no chain, a TLS one no host key.
func (d *decoder) checkProtocolFields(t Target, path string, at protocolLines) {
	e := t.Expect
	switch t.Protocol {
	case detector.ProtocolSSH:
		if len(e.CASPKI) > 0 || e.MinVersion != 0 || len(e.ALPN) > 0 || e.SCT {
			d.errorf(at.expect, join(path, "expect"), "ca_spki_sha256, tls_min_version, alpn and sct apply to TLS targets, not protocol ssh")
		}
	default:
		if len(e.SSHHostKeys) > 0 {
			d.errorf(at.expect, join(path, "expect.ssh_host_key_sha256"), "applies to protocol ssh only")
		}
		if t.Fallback != "" {
			d.errorf(at.fallback, join(path, "fallback"), "applies to protocol ssh only")
		}
	}
}

// defaultPort is a target's port when it gives none.
func defaultPort(p detector.Protocol) int {
	if p == detector.ProtocolSSH {
		return DefaultSSHPort
	}
	return DefaultPort
}

// WithSSH returns targets followed by SSH targets for the hosts the
// toolchain reaches over SSH (git remotes, insteadOf rewrites) that are not
// already among them, validated as written ones are; the invalid ones are
// returned as errors and left out.
func WithSSH(targets []Target, hosts []toolchain.Host) ([]Target, []error) {
	return withHosts(targets, hosts, detector.ProtocolSSH)
}
