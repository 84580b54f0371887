package daemon

import "html/template"

// pageParts are the pieces every status page shares: the style (inline:
// the CSP allows no external asset), a verdict strip as inline SVG, and
// the short guide to the verdicts that stands in for the docs, since the
// page must be readable on a machine that reaches nothing else.
var pageParts = template.Must(template.New("parts").Parse(`{{define "style"}}<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td { overflow-wrap: anywhere; }
.verdict, .nowrap, .name { white-space: nowrap; overflow-wrap: normal; }
.ok { background: #d9f2d9; }
.inspected { background: #dde8f8; }
.unreachable, .pending { background: #eee; }
.detected { background: #f8d0d0; font-weight: bold; }
.counts .verdict { display: inline-block; padding: .2em .6em; margin-right: .3em; border: 1px solid #ccc; }
.timeline td { border: none; padding: .1em .5em; }
.timeline, .facts { width: auto; }
code, .pin { font-family: ui-monospace, monospace; font-size: 90%; }
.warn { color: #a00; }
small { color: #666; }
</style>{{end}}
{{define "strip"}}<svg class="strip" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="verdicts over time"><rect x="0" y="0" width="{{.Width}}" height="{{.Height}}" fill="#f7f7f7"/>{{range .Segments}}<rect x="{{.X}}" y="0" width="{{.W}}" height="{{$.Height}}" fill="{{.Fill}}"><title>{{.Title}}</title></rect>{{end}}</svg>{{end}}
{{define "about"}}<h2 id="about">What the verdicts mean</h2>
<p><b>ok</b>: the chain verifies against the public roots and nothing in the way was seen.
<b>inspected</b>: an approved inspection CA terminates TLS.
<b>intercepted</b>, <b>downgraded</b>, <b>dns-tampered</b>, <b>transparent-proxy</b>, <b>plaintext</b>, <b>captive-portal</b>, <b>blocked</b>, <b>invalid-cert</b>: something is in the way; the target's page has the evidence and the fix.
<b>unreachable</b>: the network is down or the host is; not evidence of interception.
The full guide is <code>mitmwatch --help</code> and the README.</p>{{end}}
`))

var targetTemplate = template.Must(template.Must(pageParts.Clone()).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Key}} · mitmwatch</title>
{{template "style"}}
</head>
<body>
<p><a href="/">← all targets</a> · <a href="/metrics">metrics</a></p>
<h1 class="name">{{.Key}}</h1>
<p><span class="verdict {{.Class}}" id="verdict">{{.Verdict}}</span>{{if .Product}} · {{.Product}}{{end}}
{{if .LastProbe}} · last probe <span class="nowrap">{{.LastProbe}}</span>{{end}}{{if .Source}} · <small>{{.Source}}</small>{{end}}</p>
{{if .Remediation}}<h2 id="fix">What to do</h2>
<p>{{.Remediation}}</p>{{end}}
<h2 id="findings">Findings</h2>
{{with .Findings}}<table>
<thead><tr><th>Severity</th><th>Reason</th><th>Evidence</th></tr></thead>
<tbody>
{{range .}}<tr><td class="nowrap">{{.Severity}}</td><td class="nowrap"><b>{{.Reason}}</b></td><td>{{.Detail}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>None.</p>{{end}}
<h2 id="history">Changes of verdict</h2>
{{with .Changes}}<p>{{template "strip" $.Strip}}</p>
<table class="facts">
<thead><tr><th>When</th><th>From</th><th>To</th></tr></thead>
<tbody>
{{range .}}<tr class="change"><td class="nowrap">{{.At}}</td><td class="nowrap">{{.From}}</td><td class="verdict {{.Class}}">{{.To}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No verdict yet.</p>{{end}}
{{if .Probed}}<h2 id="connection">Connection</h2>
<table class="facts"><tbody>
{{range .Conn}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</tbody></table>
<h2 id="chain">Presented chain</h2>
{{with .Chain}}<table>
<thead><tr><th>#</th><th>Subject</th><th>Issuer</th><th>SPKI pin (SHA-256)</th><th>Valid from</th><th>Valid until</th><th>SCTs</th></tr></thead>
<tbody>
{{range .}}<tr><td>{{.N}}</td><td>{{.Subject}}</td><td>{{.Issuer}}</td><td class="pin">{{.SPKI}}</td><td class="nowrap">{{.NotBefore}}</td><td class="nowrap">{{.NotAfter}}</td><td>{{.SCTs}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No chain was presented.</p>{{end}}
<h2 id="trace">Path trace</h2>
{{with .Trace}}<table class="facts"><tbody>
{{range .}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</tbody></table>{{else}}<p>Not traced on this probe.</p>{{end}}
<h2 id="dns">DNS answers</h2>
{{with .DNS}}<table>
<thead><tr><th>Resolver</th><th>Rcode</th><th>Addresses</th><th>Min TTL</th><th>Failure</th></tr></thead>
<tbody>
{{range .}}<tr><td>{{.Resolver}}{{if .System}} <small>system</small>{{end}}{{if .Canary}} <small>a name that cannot exist</small>{{end}}</td><td>{{.Rcode}}</td><td>{{.Addrs}}</td><td>{{.TTL}}</td><td>{{.Failure}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No resolver was asked (an address, or a proxy resolves).</p>{{end}}
{{else}}<p>The presented chain, the path trace and the DNS answers appear once this process has probed the target: the state file keeps the findings only.</p>
{{end}}</body>
</html>
`))
