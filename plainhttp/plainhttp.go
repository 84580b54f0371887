// Package plainhttp reads what answered a TLS port in clear text — a
// captive portal, a block page, a proxy's refusal — as an HTTP answer. The
// active probe and passive capture both meet such answers, so they share
// this one bounded, sanitising reader. Nothing here dials.
package plainhttp

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Limits on what is read from a peer that is not the expected one: enough
// to name it, never enough to hurt.
const (
	MaxHead    = 16 << 10 // the status line and headers
	MaxBody    = 4 << 10  // the start of the body
	MaxSnippet = 200      // any one string kept
)

// proxyHeaderNames are response headers that name a proxy on the path.
var proxyHeaderNames = []string{"Via", "X-Bluecoat-Via", "X-Cache", "X-Iwsaas-Via", "X-Mwg-Via", "X-Squid-Error", "X-Forwarded-For"}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// Parse reads whatever a peer sent in clear text as an HTTP
// response; bytes that are not one are kept, sanitised, as the snippet.
// Passive capture reads the same answers, so it shares this reading.
func Parse(head []byte) *detector.HTTPAnswer {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		return &detector.HTTPAnswer{BodySnippet: sanitize(string(head), MaxSnippet)}
	}
	defer resp.Body.Close()
	return Read(resp)
}

// Read reads a clear-text HTTP response: status, redirect, title, the
// headers that name a proxy and the start of the body, each bounded and
// sanitised.
func Read(resp *http.Response) *detector.HTTPAnswer {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	a := &detector.HTTPAnswer{
		Status:   resp.StatusCode,
		Location: sanitize(resp.Header.Get("Location"), MaxSnippet),
	}
	if m := titleRE.FindSubmatch(body); m != nil {
		a.Title = sanitize(string(m[1]), MaxSnippet)
	}
	a.BodySnippet = sanitize(string(body), MaxSnippet)
	for _, name := range proxyHeaderNames {
		if v := resp.Header.Get(name); v != "" {
			a.ProxyHeaders = append(a.ProxyHeaders, name+": "+sanitize(v, MaxSnippet))
		}
	}
	for name, vs := range resp.Header {
		if strings.HasPrefix(strings.ToLower(name), "zsa-") && len(vs) > 0 {
			a.ProxyHeaders = append(a.ProxyHeaders, name+": "+sanitize(vs[0], MaxSnippet))
		}
	}
	return a
}

// sanitize makes network-supplied text safe to print: valid UTF-8, no
// control characters, collapsed space, bounded length.
func sanitize(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ' ' {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
		if b.Len() >= n {
			break
		}
	}
	out := strings.TrimSpace(b.String())
	for len(out) > n || !utf8.ValidString(out) {
		out = out[:len(out)-1]
	}
	return out
}
