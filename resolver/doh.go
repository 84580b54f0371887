package resolver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/miekg/dns"
)

// dnsMessageType is RFC 8484's media type.
const dnsMessageType = "application/dns-message"

// maxDoHReply bounds what is read of a DoH reply: no DNS message is
// larger, and a block page or a misbehaving endpoint must not be read
// whole.
const maxDoHReply = 64 << 10

// httpClient returns the DoH client and what to release after a lookup.
// The one built here shares the Client's transport, so lookups reuse one
// HTTP/2 connection per resolver until Close.
func (c *Client) httpClient() (*http.Client, func()) {
	if c.HTTPClient != nil {
		return c.HTTPClient, func() {}
	}
	hc := &http.Client{
		Transport: c.dohTransport(),
		// A redirect is evidence (a block page, a portal), not a detour.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return hc, func() {}
}

// exchangeDoH sends q to an RFC 8484 endpoint and reads the reply.
func (c *Client) exchangeDoH(ctx context.Context, hc *http.Client, endpoint string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	wire, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("doh: pack query: %w", err)
	}
	var req *http.Request
	if c.DoHGet {
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("doh: %w", err)
		}
		v := u.Query()
		v.Set("dns", base64.RawURLEncoding.EncodeToString(wire))
		u.RawQuery = v.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("doh: %w", err)
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(wire))
		if err != nil {
			return nil, fmt.Errorf("doh: %w", err)
		}
		req.Header.Set("Content-Type", dnsMessageType)
	}
	req.Header.Set("Accept", dnsMessageType)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	defer resp.Body.Close()
	r, err := readDoHReply(resp)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return r, nil
}

// readDoHReply reads the DNS message of a DoH response, refusing anything
// that is not one: another status, another media type, an oversized or
// unparsable body.
func readDoHReply(resp *http.Response) (*dns.Msg, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, replyErrorf("doh: HTTP status %s", resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != dnsMessageType {
		return nil, replyErrorf("doh: Content-Type %q, want %s", ct, dnsMessageType)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDoHReply+1))
	if err != nil {
		return nil, fmt.Errorf("doh: reading reply: %w", err)
	}
	if len(body) > maxDoHReply {
		return nil, replyErrorf("doh: reply larger than %d bytes", maxDoHReply)
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		return nil, replyErrorf("doh: malformed reply: %v", err)
	}
	return r, nil
}
