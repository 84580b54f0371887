package passive

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

// What is kept of a clear-text answer: enough to name who spoke.
const (
	maxSnippet = 200
	maxBody    = 4 << 10
)

// proxyHeaderNames are response headers that name a proxy on the path (the
// same list the active probe reads).
var proxyHeaderNames = []string{"Via", "X-Bluecoat-Via", "X-Cache", "X-Iwsaas-Via", "X-Mwg-Via", "X-Squid-Error", "X-Forwarded-For"}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// parseAnswer reads what a server said in clear text as an HTTP response;
// bytes that are not one are kept, sanitised, as the snippet.
func parseAnswer(head []byte) *detector.HTTPAnswer {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		return &detector.HTTPAnswer{BodySnippet: sanitize(string(head), maxSnippet)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	a := &detector.HTTPAnswer{
		Status:      resp.StatusCode,
		Location:    sanitize(resp.Header.Get("Location"), maxSnippet),
		BodySnippet: sanitize(string(body), maxSnippet),
	}
	if m := titleRE.FindSubmatch(body); m != nil {
		a.Title = sanitize(string(m[1]), maxSnippet)
	}
	for _, name := range proxyHeaderNames {
		if v := resp.Header.Get(name); v != "" {
			a.ProxyHeaders = append(a.ProxyHeaders, name+": "+sanitize(v, maxSnippet))
		}
	}
	for name, vs := range resp.Header {
		if strings.HasPrefix(strings.ToLower(name), "zsa-") && len(vs) > 0 {
			a.ProxyHeaders = append(a.ProxyHeaders, name+": "+sanitize(vs[0], maxSnippet))
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
