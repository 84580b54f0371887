//go:build !lean

package main

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/termsafe"
	"github.com/mitmwatch/mitmwatch/termsafe/termsafetest"
)

// hostileServer is a loopback TLS server presenting termsafetest.Chain:
// every name in its certificate carries escape sequences.
func hostileServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{termsafetest.Chain(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// checkShowsEscaped fails unless out shows the certificate's payloads
// escaped, as termsafe.String writes them: the hostile names were printed.
func checkShowsEscaped(t *testing.T, out string) {
	t.Helper()
	for _, p := range []string{termsafetest.Clear, termsafetest.CSI8Bit, termsafetest.Reverse} {
		if !strings.Contains(out, termsafe.String(p)) {
			t.Errorf("output lacks %s:\n%s", termsafe.String(p), out)
		}
	}
}

// TestCheckEscapesHostileNames runs `mitmwatch check` against a server
// whose certificate names carry ESC, BEL, OSC and CSI sequences: neither
// the table nor the JSON holds one raw.
func TestCheckEscapesHostileNames(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, e, "", labTarget{"github.com", hostileServer(t)})
	c := cli{t: t}
	code, stdout, stderr := c.run("check", "--config", rules)
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %s", code, stderr)
	}
	termsafetest.Check(t, stdout)
	termsafetest.Check(t, stderr)
	checkShowsEscaped(t, stdout)
	_, stdout, _ = c.run("check", "--config", rules, "-o", "json")
	termsafetest.Check(t, stdout)
	if d := decode(t, stdout); len(d.Targets) != 1 || d.Targets[0].Verdict == "ok" {
		t.Errorf("JSON targets %+v", d.Targets)
	}
}

// TestRunLogsVerdictChangeEscaped runs the service against the same
// server, pinned to the lab's public CA, with each log format: the
// "verdict changed" line, whose evidence names the nearest CA, holds
// nothing raw.
func TestRunLogsVerdictChangeEscaped(t *testing.T) {
	e := newEnv(t)
	rules := writeRules(t, e, "", labTarget{"github.com", hostileServer(t)})
	data, err := os.ReadFile(rules)
	must(t, err)
	pin := detector.SPKIOf(e.PKI.PublicIntermediate.Cert).String()
	must(t, os.WriteFile(rules, append(data, "    expect:\n      ca_spki_sha256: ["+pin+"]\n"...), 0o644))
	for _, format := range []string{"logfmt", "json"} {
		t.Run(format, func(t *testing.T) {
			s := startService(t, "--config", rules, "--state.dir", t.TempDir(), "--log.format="+format)
			s.waitFor("the verdict change logged", func() bool { return strings.Contains(s.stderr.String(), "verdict changed") })
			if code := s.stop(); code != 0 {
				t.Errorf("exit %d", code)
			}
			logs := s.stderr.String()
			termsafetest.Check(t, logs)
			if !strings.Contains(logs, `Root CA`) || !strings.Contains(logs, `\u009b31m`) {
				t.Errorf("the evidence lacks the escaped issuer:\n%s", logs)
			}
		})
	}
}

// TestAuditEscapesHostileText audits a home whose system store holds a
// root named with escape sequences and whose settings carry them: the
// table and the JSON hold none raw.
func TestAuditEscapesHostileText(t *testing.T) {
	t.Parallel()
	m := auditHome(t, termsafetest.Hostile("Root CA"))
	must(t, os.MkdirAll(filepath.Join(m["HOME"], ".config", "pip"), 0o755))
	must(t, os.WriteFile(filepath.Join(m["HOME"], ".config", "pip", "pip.conf"),
		[]byte("[global]\ntrusted-host = "+termsafetest.Hostile("pypi.lab.example")+"\n"), 0o644))
	m["HTTPS_PROXY"] = "http://proxy.lab.example:3128/" + termsafetest.Hostile("")
	code, stdout, stderr := runAudit(t, m)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	termsafetest.Check(t, stdout)
	termsafetest.Check(t, stderr)
	checkShowsEscaped(t, stdout)
	t.Logf("\n%s\n%s", stdout, stderr)
	_, stdout, _ = runAudit(t, m, "-o", "json")
	termsafetest.Check(t, stdout)
}

// TestValidateEscapesTheFile shows a config error that quotes a field
// name holding escape sequences: validate prints one problem a line, and
// check's error (through slog's text handler, which quotes it), none raw.
func TestValidateEscapesTheFile(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "rules.yaml")
	must(t, os.WriteFile(bad, []byte("targets:\n  - host: github.com\n    \"\\e[2J\\u009b31m\": 1\n    port: 70000\n"), 0o644))
	c := cli{t: t}
	code, _, stderr := c.run("validate", "--config", bad)
	if code != 2 || strings.Count(stderr, "\n") != 2 || !strings.Contains(stderr, `\x1b[2J\u009b31m: unknown field`) {
		t.Errorf("exit %d, want 2 and two problems:\n%s", code, stderr)
	}
	termsafetest.Check(t, stderr)
	code, _, stderr = c.run("check", "--config", bad)
	if code != 2 || !strings.Contains(stderr, "unknown field") {
		t.Errorf("check: exit %d, want 2:\n%s", code, stderr)
	}
	termsafetest.Check(t, stderr)
}
