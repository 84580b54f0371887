package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mitmwatch/mitmwatch/tools"
)

// forecasts are what a machine behind an inspection proxy might be told:
// npm fails where go verifies, pip is told to trust anything, a GOPROXY
// talks plain HTTP, and a certificate name tries to write to the terminal.
func forecasts() []tools.Forecast {
	reg := tools.Host{Host: "registry.corp.example", Port: 443, Scheme: "https", Source: "registry (/home/u/.npmrc:1)"}
	goproxy := tools.Host{Host: "goproxy.corp.example", Port: 80, Scheme: "http", Source: "GOPROXY (environment)"}
	node := tools.Store{Description: "Node's bundled roots (v20.20.2, 144)"}
	system := tools.Store{Description: "system store (/etc/ssl/certs/ca-certificates.crt)", System: true}
	return []tools.Forecast{
		{Tool: tools.Tool{Name: tools.Go, Version: "go1.26.8", Store: system,
			Proxy: &tools.Setting{Name: "HTTPS_PROXY", Value: "http://REDACTED@proxy.corp.example:3128", Source: "environment"}},
			Predictions: []tools.Prediction{
				{Tool: tools.Go, Host: reg, Outcome: tools.Verifies, Store: system.Description},
				{Tool: tools.Go, Host: goproxy, Outcome: tools.PlainHTTP, Store: system.Description,
					Fix: "Serve goproxy.corp.example over https with a certificate from an internal CA, instead of plain HTTP and GOINSECURE: install internal-ca.pem"},
			}},
		{Tool: tools.Tool{Name: tools.NPM, Version: "11.19.1 (node v20.20.2)", Store: node}, Predictions: []tools.Prediction{
			{Tool: tools.NPM, Host: reg, Outcome: tools.Fails, Store: node.Description,
				Error: "ERR_TLS_CERT_ALTNAME_INVALID: Host: registry.corp.example. is not in the cert's altnames: DNS:evil\x1b]0;pwned\x07.example",
				Fix:   "Add the CA to Node's roots (npm, and every script it runs): export NODE_EXTRA_CA_CERTS=/etc/corp/ca.pem"},
		}},
		{Tool: tools.Tool{Name: tools.Pip, Version: "23.2.1", Store: tools.Store{Description: "pip's certifi bundle"},
			Verify: &tools.Setting{Name: "global.trusted-host", Value: "registry.corp.example", Source: "/etc/pip.conf:3"}},
			Predictions: []tools.Prediction{
				{Tool: tools.Pip, Host: reg, Outcome: tools.VerificationOff, Store: "pip's certifi bundle",
					Fix: "pip accepts any certificate from registry.corp.example while global.trusted-host=registry.corp.example (/etc/pip.conf:3) is set; remove it"},
			}},
		{Tool: tools.Tool{Name: tools.Docker, Store: system}},
	}
}

func TestToolsTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := ToolsTable(&buf, forecasts(), false); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(buf.Bytes(), "\x1b\x07") {
		t.Error("text from a certificate reached the terminal unescaped")
	}
	golden(t, "tools.txt", buf.Bytes())
	var coloured bytes.Buffer
	if err := ToolsTable(&coloured, forecasts(), true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(coloured.String(), red+"fails") || !strings.Contains(coloured.String(), green+"verifies") {
		t.Errorf("coloured table lacks the outcome colours:\n%s", coloured.String())
	}
}

func TestToolsJSON(t *testing.T) {
	doc := Build(nil)
	doc.Tools = BuildTools(forecasts())
	var buf bytes.Buffer
	if err := doc.Write(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "tools.json", buf.Bytes())

	// The contract: a top-level "tools" list, per tool its store, proxy
	// and verification, per target the outcome, error and fix.
	var got struct {
		Tools []struct {
			Tool, Version, Store, Proxy, Verification string
			Installed                                 bool
			Targets                                   []struct {
				Host                string
				Port                int
				Outcome, Error, Fix string
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Tools) != 4 || got.Tools[1].Tool != "npm" || got.Tools[1].Targets[0].Outcome != "fails" ||
		!strings.Contains(got.Tools[1].Targets[0].Fix, "NODE_EXTRA_CA_CERTS") || got.Tools[2].Verification != "off: global.trusted-host=registry.corp.example (/etc/pip.conf:3)" ||
		got.Tools[3].Installed || got.Tools[3].Targets == nil {
		t.Errorf("tools = %+v", got.Tools)
	}
}
