package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
)

// Routes is the lab's DNS: it maps a host name to the loopback address of
// the lab server that plays it, e.g. "github.com" → an Origin's Addr.
type Routes map[string]string

// DialContext dials the server that plays addr's host. Loopback IP literals
// are dialled as they are; any other unknown host is an error, so nothing
// in the lab ever leaves the machine.
func (r Routes) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("lab: dial %q: %w", addr, err)
	}
	target, ok := r[host]
	if !ok {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("lab: no route to %s", host)
		}
		target = addr
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

// InterceptorOptions configure the third-party proxy.
type InterceptorOptions struct {
	// CA signs the leaves the proxy forges; nil means PKI.EnterpriseRoot.
	CA *CA
	// Routes lead the proxy's upstream connections to lab origins.
	Routes Routes
	// Log receives goproxy's messages at debug level; nil discards them.
	Log *slog.Logger
	// Tunnel passes every CONNECT through untouched, as a plain forward
	// proxy does, instead of intercepting it.
	Tunnel bool
	// InsecureUpstream accepts any upstream certificate: the interceptor
	// then re-signs expired, self-signed and wrong-host certificates.
	InsecureUpstream bool
}

// Interceptor is a real third-party TLS-intercepting proxy — goproxy with
// MITM on every CONNECT, or none with Tunnel — so that detection is tested
// against software the project did not write. Its upstream side trusts only the lab's public
// root and reaches origins through Routes.
type Interceptor struct {
	http  *httpServer
	proxy *goproxy.ProxyHttpServer
}

// NewInterceptor starts goproxy on loopback.
func NewInterceptor(p *PKI, opts InterceptorOptions) (*Interceptor, error) {
	ca := opts.CA
	if ca == nil {
		ca = p.EnterpriseRoot
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	routes := make(Routes, len(opts.Routes))
	for k, v := range opts.Routes {
		routes[k] = v
	}

	proxy := goproxy.NewProxyHttpServer()
	proxy.Logger = printfLogger{log}
	proxy.CertStore = &certCache{m: make(map[string]*tls.Certificate)}
	proxy.ConnectDial = nil // not from HTTPS_PROXY: upstream is the lab
	proxy.Tr = &http.Transport{
		DialContext:         routes.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: p.PublicPool(), InsecureSkipVerify: opts.InsecureUpstream},
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	signing := &tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: ca.Key, Leaf: ca.Cert}
	action := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(signing)}
	if opts.Tunnel {
		action = goproxy.OkConnect
	}
	proxy.OnRequest().HandleConnectFunc(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return action, host
	})

	s, err := serveHTTP(proxy, nil)
	if err != nil {
		return nil, fmt.Errorf("lab: interceptor: %w", err)
	}
	return &Interceptor{http: s, proxy: proxy}, nil
}

// Addr is the proxy's "127.0.0.1:port".
func (i *Interceptor) Addr() string { return i.http.Addr() }

// URL is the proxy as a client's HTTPS_PROXY would name it.
func (i *Interceptor) URL() *url.URL {
	return &url.URL{Scheme: "http", Host: i.Addr()}
}

// RedirectDialer returns a dial function that sends every connection through
// the proxy with CONNECT, as a redirecting firewall would: the client
// believes it dials addr directly and is intercepted anyway. addr should
// name the host (goproxy forges for the CONNECT target, not the SNI).
func (i *Interceptor) RedirectDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !strings.HasPrefix(network, "tcp") {
			return nil, fmt.Errorf("lab: redirect %s: network %q", addr, network)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", i.Addr())
		if err != nil {
			return nil, fmt.Errorf("lab: redirect %s: %w", addr, err)
		}
		conn, err := connect(ctx, c, addr)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("lab: redirect %s: %w", addr, err)
		}
		return conn, nil
	}
}

// connect asks the proxy on c for a tunnel to addr, bounded by ctx.
func connect(ctx context.Context, c net.Conn, addr string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: make(http.Header)}
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr); err != nil {
		stop()
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if !stop() {
		return nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("proxy answered %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn returns bytes read ahead with the proxy's reply first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// Close stops the proxy and ends its connections, including tunnels it has
// taken over.
func (i *Interceptor) Close() error {
	err := i.http.Close()
	i.proxy.Tr.CloseIdleConnections()
	return err
}

// certCache keeps goproxy from signing a leaf per connection.
type certCache struct {
	mu sync.Mutex
	m  map[string]*tls.Certificate
}

func (c *certCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cert, ok := c.m[host]; ok {
		return cert, nil
	}
	cert, err := gen()
	if err != nil {
		return nil, err
	}
	c.m[host] = cert
	return cert, nil
}

// printfLogger carries goproxy's Printf-style messages to slog.
type printfLogger struct{ log *slog.Logger }

func (l printfLogger) Printf(format string, v ...any) {
	l.log.Debug("goproxy", "msg", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
