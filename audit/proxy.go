package audit

import (
	"context"

	"github.com/mitmwatch/mitmwatch/detector"
)

// proxyChecks reports the proxy variables curl, git, Go, npm, pip and most
// other tools honour, in any case.
func (a *auditor) proxyChecks(context.Context) *part {
	p := &part{}
	for _, name := range []string{"HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"} {
		for _, v := range a.env.anyCase(name) {
			if v.value != "" {
				p.add(proxyFinding("env", v.name, v.value, fromEnv,
					"most tools send their traffic through this proxy; if it inspects TLS, each tool needs the proxy's CA (SSL_CERT_FILE, GIT_SSL_CAINFO, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE), never verification switched off"))
			}
		}
	}
	for _, v := range a.env.anyCase("NO_PROXY") {
		if v.value != "" {
			p.add(Finding{Tool: "env", Setting: v.name, Value: redactURLs(v.value), Source: fromEnv, Severity: detector.Info,
				Why: "connections to these hosts bypass the proxy: they may see a different path (and a different middlebox, or none) than the rest",
				Fix: "Nothing to undo; keep it to internal hosts, so that mitmwatch's probes through the proxy match what the tools do."})
		}
	}
	return p
}
