package audit

import "strings"

// Setting is one value a tool reads that bears on its TLS: the CA bundle it
// trusts, whether it verifies, its proxy, the hosts it fetches from. The
// audit records every such value as it reads it, so that package tools can
// predict each tool's outcome from the same reading the findings come from.
// Secrets (tokens, passwords) are never recorded, and the credentials in
// URLs are redacted.
type Setting struct {
	Tool string // go, git, npm, pnpm, pip, cargo, docker
	// Key is the tool's own name for the setting, spelled as the tool
	// matches it: "cafile", "strict-ssl", "http.https://git.corp.example/.sslverify"
	// (git: section and name in lower case), "global.cert" or "PIP_CERT",
	// "http.cainfo", "insecure-registries", "GOINSECURE".
	Key    string
	Value  string
	Source string // file:line, "environment" or "go env"
}

// set records a setting for Report.Settings.
func (p *part) set(tool, key, value, source string) {
	if secretKey(key) {
		return
	}
	if strings.Contains(strings.ToLower(key), "proxy") {
		value = redactProxy(value)
	} else {
		value = redactURLs(value)
	}
	p.settings = append(p.settings, Setting{Tool: tool, Key: key, Value: value, Source: source})
}

// Redact hides the credentials (user:password@) of a URL or a proxy
// setting, as in every value the audit reports.
func Redact(s string) string { return redactProxy(s) }
