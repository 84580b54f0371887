package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mitmwatch/mitmwatch/check"
)

// runAudit runs `mitmwatch audit` in-process, on its own kingpin app, with
// the environment m (HOME among it).
func runAudit(t *testing.T, m map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := kingpin.New("mitmwatch", "")
	code = check.ExitClean
	registerAudit(app, ctx, env{stdout: &out, stderr: &errb, getenv: func(k string) string { return m[k] }}, func(c int) { code = c })
	// The machine's own system-wide files stay out, even for root.
	if _, err := app.Parse(append([]string{"audit", "--no-all-users"}, args...)); err != nil {
		ee, ok := err.(*exitError)
		if !ok {
			t.Fatalf("parse: %v", err)
		}
		code = ee.code
	}
	return code, out.String(), errb.String()
}

// auditHome is a temporary home; its system store is a bundle holding one
// root, named by SSL_CERT_FILE, so the machine's own store stays out.
func auditHome(t *testing.T, rootCN string) map[string]string {
	t.Helper()
	dir, home := t.TempDir(), goHome(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: rootCN},
		NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(2_000_000_000, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	store := filepath.Join(dir, "store.pem")
	must(t, os.WriteFile(store, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	certDir := filepath.Join(dir, "certs")
	must(t, os.MkdirAll(certDir, 0o755))
	return map[string]string{"HOME": home, "SSL_CERT_FILE": store, "SSL_CERT_DIR": certDir, "GOPROXY": "off", "GOSUMDB": "sum.lab.example"}
}

// goHome is a temporary directory for a HOME the go command runs in. Its
// telemetry is turned off by the mode file (no environment variable does):
// otherwise a child the go command leaves behind writes counters into the
// directory after it was removed.
func goHome(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mode := filepath.Join(dir, ".config", "go", "telemetry", "mode")
	must(t, os.MkdirAll(filepath.Dir(mode), 0o755))
	must(t, os.WriteFile(mode, []byte("off\n"), 0o644))
	return dir
}

func TestAuditJSON(t *testing.T) {
	t.Parallel()
	m := auditHome(t, "Zscaler Root CA")
	home := m["HOME"]
	must(t, os.WriteFile(filepath.Join(home, ".npmrc"), []byte("strict-ssl=false\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[http]\n\tsslVerify = false\n"), 0o644))
	m["HTTPS_PROXY"] = "http://alice:hunter2@proxy.lab.example:3128"

	code, stdout, stderr := runAudit(t, m, "-o", "json")
	if code != check.ExitDetected {
		t.Errorf("exit %d, want %d (critical settings); stderr: %s", code, check.ExitDetected, stderr)
	}
	if strings.Contains(stdout, "hunter2") || strings.Contains(stdout, "alice") {
		t.Errorf("credentials leaked:\n%s", stdout)
	}
	var doc struct {
		SchemaVersion int `json:"schema_version"`
		Audit         struct {
			Findings []map[string]any `json:"findings"`
			Hosts    []map[string]any `json:"hosts"`
			Warnings []string         `json:"warnings"`
		} `json:"audit"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	must(t, dec.Decode(&doc))
	if doc.SchemaVersion != 1 || doc.Audit.Hosts == nil || doc.Audit.Warnings == nil {
		t.Errorf("schema_version %d, hosts %v, warnings %v; want 1 and arrays", doc.SchemaVersion, doc.Audit.Hosts, doc.Audit.Warnings)
	}
	want := map[string]string{
		"critical npm strict-ssl":     filepath.Join(home, ".npmrc") + ":1",
		"critical git http.sslVerify": filepath.Join(home, ".gitconfig") + ":2",
		"warning env HTTPS_PROXY":     "environment",
		"warning trust SSL_CERT_FILE": m["SSL_CERT_FILE"] + ":1",
	}
	for _, f := range doc.Audit.Findings {
		for _, k := range []string{"tool", "setting", "value", "source", "severity", "why", "fix"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding %v lacks %q", f, k)
			}
		}
		key := f["severity"].(string) + " " + f["tool"].(string) + " " + f["setting"].(string)
		if src, ok := want[key]; ok {
			if f["source"] != src {
				t.Errorf("%s: source %v, want %s", key, f["source"], src)
			}
			delete(want, key)
		}
		if f["tool"] == "trust" {
			root, _ := f["root"].(map[string]any)
			if root["product"] != "Zscaler" || root["spki"] == "" || root["subject"] != "CN=Zscaler Root CA" {
				t.Errorf("trust finding root = %v", root)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("missing findings %v in:\n%s", want, stdout)
	}
	if doc.Audit.Hosts[0]["host"] != "sum.lab.example" || doc.Audit.Hosts[0]["scheme"] != "https" {
		t.Errorf("hosts = %v; want the GOSUMDB host first", doc.Audit.Hosts)
	}
}

func TestAuditTable(t *testing.T) {
	t.Parallel()
	m := auditHome(t, "Test Corp Root")
	must(t, os.MkdirAll(filepath.Join(m["HOME"], ".config", "pip"), 0o755))
	must(t, os.WriteFile(filepath.Join(m["HOME"], ".config", "pip", "pip.conf"), []byte("[global]\ntrusted-host = pypi.lab.example\n"), 0o644))
	code, stdout, _ := runAudit(t, m)
	if code != check.ExitDetected {
		t.Errorf("exit %d, want %d", code, check.ExitDetected)
	}
	for _, s := range []string{"SEVERITY  TOOL", "critical  pip", "global.trusted-host", "pip.conf:2", "why: pip accepts any certificate", "fix: Remove it", "info      trust",
		"root: CN=Test Corp Root, SPKI ", "HOST", "pypi.lab.example:443  https"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, stdout)
		}
	}
}

func TestAuditClean(t *testing.T) {
	t.Parallel()
	m := auditHome(t, "Test Corp Root")
	code, stdout, stderr := runAudit(t, m, "--no-color")
	if code != check.ExitClean {
		t.Errorf("exit %d, want 0:\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "critical") {
		t.Errorf("critical finding in a clean home:\n%s", stdout)
	}
}
