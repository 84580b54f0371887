//go:build linux

package netlab

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Interceptor is a running middlebox of the router namespace.
type Interceptor struct {
	// Product is what the program is ("mitmproxy", "sslsplit", "squid",
	// "haproxy").
	Product string
	// CA signs its forged leaves; CAPEM is it as a bundle file entry. Both
	// are nil for a middlebox that does not decrypt (haproxy): the client
	// meets the origins' genuine chains.
	CA    *x509.Certificate
	CAPEM []byte
	// Proxy is the URL a client puts in HTTPS_PROXY; empty when the
	// middlebox is transparent.
	Proxy string
}

// Tools maps each program the scenarios need to its Debian package.
var Tools = map[string]string{
	"ip":                                   "iproute2",
	"nft":                                  "nftables",
	"mitmdump":                             "mitmproxy",
	"sslsplit":                             "sslsplit",
	"squid":                                "squid-openssl",
	"/usr/lib/squid/security_file_certgen": "squid-openssl",
	"haproxy":                              "haproxy",
	"iptables":                             "iptables",
}

// MissingTools lists the programs of Tools that are not installed, as
// "program (Debian package)".
func MissingTools() []string {
	var out []string
	for prog, pkg := range Tools {
		if _, err := exec.LookPath(prog); err != nil {
			out = append(out, fmt.Sprintf("%s (%s)", prog, pkg))
		}
	}
	// Debian's plain squid package has no ssl-bump: it must be squid-openssl.
	if v, err := output("squid", "-v"); err == nil && !strings.Contains(v, "--with-openssl") {
		out = append(out, "squid built with OpenSSL (squid-openssl, not squid)")
	}
	return out
}

// Ports of the middleboxes on the router.
const (
	mitmproxyPort = 8080
	sslsplitPort  = 8443
	squidPort     = 3128 // explicit proxy
	squidTLSPort  = 3129 // transparent, intercept ssl-bump
	haproxyPort   = 9443 // transparent, TCP mode
)

// redirect443 makes the router hand every connection the client sends to
// port 443 to a local port instead: the transparent interception of
// iptables' REDIRECT, in nftables. The original destination stays known
// through conntrack (SO_ORIGINAL_DST), as the proxies expect.
func (l *Lab) redirect443(port int) error {
	rules := fmt.Sprintf(`table ip netlab {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "r0" tcp dport 443 redirect to :%d
	}
}
`, port)
	path, err := l.WriteFile("redirect.nft", []byte(rules))
	if err != nil {
		return err
	}
	return inNS(l.Router, "nft", "-f", path)
}

// StartMitmproxy runs mitmdump, transparent or as an explicit proxy, with
// the CA it generates itself at first start (CN and O "mitmproxy"). sets
// are more options, "name=value" each, as `--set` takes them.
func (l *Lab) StartMitmproxy(transparent bool, sets ...string) (*Interceptor, error) {
	confdir := filepath.Join(l.Dir, "mitmproxy")
	if err := os.Mkdir(confdir, 0o755); err != nil {
		return nil, err
	}
	public, err := l.WriteFile("public.pem", l.PKI.PublicPEM())
	if err != nil {
		return nil, err
	}
	mode := "regular"
	if transparent {
		mode = "transparent"
		if err := l.redirect443(mitmproxyPort); err != nil {
			return nil, err
		}
	}
	listen := netip.AddrPortFrom(RouterAddr, mitmproxyPort)
	args := []string{"--mode", mode,
		"--listen-host", RouterAddr.String(), "--listen-port", strconv.Itoa(mitmproxyPort),
		"--set", "confdir=" + confdir,
		"--set", "ssl_verify_upstream_trusted_ca=" + public,
		"--set", "flow_detail=0"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	p, err := l.Start(l.Router, "mitmdump", []string{"HOME=" + l.Dir}, "mitmdump", args...)
	if err != nil {
		return nil, err
	}
	if err := waitListening(l.Router, listen.String(), p); err != nil {
		return nil, err
	}
	ca, caPEM, err := readCert(filepath.Join(confdir, "mitmproxy-ca-cert.pem"))
	if err != nil {
		return nil, err
	}
	ic := &Interceptor{Product: "mitmproxy", CA: ca, CAPEM: caPEM}
	if !transparent {
		ic.Proxy = "http://" + listen.String()
	}
	return ic, nil
}

// StartSSLsplit runs sslsplit transparently, signing with a CA the
// administrator made (admin-chosen name, RSA 2048, as its manual shows).
func (l *Lab) StartSSLsplit() (*Interceptor, error) {
	ca, caPEM, keyPEM, err := adminCA("Example Corp TLS Inspection CA")
	if err != nil {
		return nil, err
	}
	crt, err := l.WriteFile("sslsplit-ca.crt", caPEM)
	if err != nil {
		return nil, err
	}
	key, err := l.WriteFile("sslsplit-ca.key", keyPEM)
	if err != nil {
		return nil, err
	}
	if err := l.redirect443(sslsplitPort); err != nil {
		return nil, err
	}
	// "https" splits TLS and parses HTTP; no target: the original
	// destination comes from the netfilter NAT engine.
	p, err := l.Start(l.Router, "sslsplit", nil, "sslsplit",
		"-k", key, "-c", crt, "-l", filepath.Join(l.Dir, "sslsplit-connect.log"),
		"https", RouterAddr.String(), strconv.Itoa(sslsplitPort))
	if err != nil {
		return nil, err
	}
	if err := waitListening(l.Router, netip.AddrPortFrom(RouterAddr, sslsplitPort).String(), p); err != nil {
		return nil, err
	}
	return &Interceptor{Product: "sslsplit", CA: ca, CAPEM: caPEM}, nil
}

// StartSquid runs squid (squid-openssl) with ssl-bump and dynamic
// certificate generation, listening both as an explicit proxy and for
// redirected port-443 traffic; transparent chooses which one the client
// meets. extra are more lines of squid.conf, after the others.
func (l *Lab) StartSquid(transparent bool, extra ...string) (*Interceptor, error) {
	ca, caPEM, keyPEM, err := adminCA("Example Corp Web Proxy CA")
	if err != nil {
		return nil, err
	}
	proxy, err := user.Lookup("proxy") // squid-openssl's user
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(proxy.Uid)
	gid, _ := strconv.Atoi(proxy.Gid)
	dir := filepath.Join(l.Dir, "squid")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	crt, err := l.WriteFile("squid/ca.crt", caPEM)
	if err != nil {
		return nil, err
	}
	key, err := l.WriteFile("squid/ca.key", keyPEM)
	if err != nil {
		return nil, err
	}
	public, err := l.WriteFile("public.pem", l.PKI.PublicPEM())
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "ssl_db")
	if err := run("/usr/lib/squid/security_file_certgen", "-c", "-s", db, "-M", "4MB"); err != nil {
		return nil, err
	}
	if err := chownAll(dir, uid, gid); err != nil {
		return nil, err
	}
	bump := fmt.Sprintf("ssl-bump tls-cert=%s tls-key=%s generate-host-certificates=on dynamic_cert_mem_cache_size=4MB", crt, key)
	conf := strings.Join(append([]string{
		fmt.Sprintf("http_port %s:%d %s", RouterAddr, squidPort, bump),
		fmt.Sprintf("https_port %s:%d intercept %s", RouterAddr, squidTLSPort, bump),
		fmt.Sprintf("sslcrtd_program /usr/lib/squid/security_file_certgen -s %s -M 4MB", db),
		"sslcrtd_children 2 startup=1 idle=1",
		"acl step1 at_step SslBump1",
		"ssl_bump peek step1",
		"ssl_bump bump all",
		"tls_outgoing_options cafile=" + public,
		"http_access allow all",
		"cache deny all",
		"cache_mem 8 MB",
		"dns_nameservers " + DNSAddr.String(),
		"hosts_file none",
		"visible_hostname netlab-router",
		"cache_effective_user proxy",
		"pid_filename " + filepath.Join(dir, "squid.pid"),
		"cache_log " + filepath.Join(dir, "cache.log"),
		"access_log stdio:" + filepath.Join(dir, "access.log"),
		"coredump_dir " + dir,
		"logfile_rotate 0",
		"shutdown_lifetime 0 seconds",
	}, append(extra, "")...), "\n")
	confPath, err := l.WriteFile("squid/squid.conf", []byte(conf))
	if err != nil {
		return nil, err
	}
	if err := run("squid", "-k", "parse", "-f", confPath); err != nil {
		return nil, err
	}
	if transparent {
		if err := l.redirect443(squidTLSPort); err != nil {
			return nil, err
		}
	}
	// -N: stay in the foreground, one process; -d 1: errors on stderr too.
	p, err := l.Start(l.Router, "squid", nil, "squid", "-N", "-d", "1", "-f", confPath)
	if err != nil {
		return nil, err
	}
	for _, port := range []int{squidPort, squidTLSPort} {
		if err := waitListening(l.Router, netip.AddrPortFrom(RouterAddr, uint16(port)).String(), p); err != nil {
			return nil, err
		}
	}
	ic := &Interceptor{Product: "squid", CA: ca, CAPEM: caPEM}
	if !transparent {
		ic.Proxy = fmt.Sprintf("http://%s:%d", RouterAddr, squidPort)
	}
	return ic, nil
}

// StartHAProxy runs haproxy in TCP mode behind the nftables redirect of
// port 443, as the SNI-routing proxies do: it answers the client's TCP
// connection itself, waits for the ClientHello, looks its server name up
// in a map of the lab's hosts to their origin addresses and splices the
// connection, bytes unchanged, to that origin. Nothing is decrypted: the
// client meets the genuine chain, and only the path (TCP answered on the
// router, TLS beyond it) gives the proxy away. A ClientHello without a
// name in the map is refused, as an SNI allow-list refuses it.
func (l *Lab) StartHAProxy() (*Interceptor, error) {
	dir := filepath.Join(l.Dir, "haproxy")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	var sni strings.Builder
	for _, h := range Hosts {
		fmt.Fprintf(&sni, "%s %s\n", h, l.Addrs[h])
	}
	sniMap, err := l.WriteFile("haproxy/sni.map", []byte(sni.String()))
	if err != nil {
		return nil, err
	}
	name := "req.ssl_sni,lower,map_str(" + sniMap + ")"
	conf := strings.Join([]string{
		"global",
		"	log stdout format raw local0 info",
		"	maxconn 1024",
		"defaults",
		"	mode tcp",
		"	log global",
		"	option tcplog",
		"	timeout connect 10s",
		"	timeout client 60s",
		"	timeout server 60s",
		"frontend tls",
		fmt.Sprintf("	bind %s:%d", RouterAddr, haproxyPort),
		// Hold the connection until the whole ClientHello is in.
		"	tcp-request inspect-delay 5s",
		"	tcp-request content reject unless { req.ssl_hello_type 1 }",
		"	tcp-request content reject unless { " + name + " -m found }",
		"	tcp-request content set-dst req.ssl_sni,lower,map_str_ip(" + sniMap + ")",
		"	default_backend origins",
		"backend origins",
		// 0.0.0.0: the destination set-dst chose.
		"	server origin 0.0.0.0:443",
		"",
	}, "\n")
	confPath, err := l.WriteFile("haproxy/haproxy.cfg", []byte(conf))
	if err != nil {
		return nil, err
	}
	if err := run("haproxy", "-c", "-q", "-f", confPath); err != nil {
		return nil, err
	}
	if err := l.redirect443(haproxyPort); err != nil {
		return nil, err
	}
	// -db: stay in the foreground, one process, logs on stdout.
	p, err := l.Start(l.Router, "haproxy", nil, "haproxy", "-db", "-f", confPath)
	if err != nil {
		return nil, err
	}
	if err := waitListening(l.Router, netip.AddrPortFrom(RouterAddr, haproxyPort).String(), p); err != nil {
		return nil, err
	}
	return &Interceptor{Product: "haproxy"}, nil
}

// adminCA makes the kind of CA an administrator makes for an interceptor
// whose CA name is theirs to choose: RSA 2048, self-signed, ten years.
func adminCA(cn string) (cert *x509.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		return nil, nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return cert, certPEM, keyPEM, nil
}

// readCert reads the first certificate of a PEM file, polling briefly:
// a program may write it just after it starts listening.
func readCert(path string) (*x509.Certificate, []byte, error) {
	var last error
	for i := 0; i < int(readyTimeout/pollEvery); i++ {
		b, err := os.ReadFile(path)
		if err == nil {
			for rest := b; ; {
				var blk *pem.Block
				if blk, rest = pem.Decode(rest); blk == nil {
					break
				}
				if blk.Type == "CERTIFICATE" {
					c, err := x509.ParseCertificate(blk.Bytes)
					if err != nil {
						return nil, nil, fmt.Errorf("%s: %w", path, err)
					}
					return c, pem.EncodeToMemory(blk), nil
				}
			}
			err = errors.New("no certificate yet")
		}
		last = err
		time.Sleep(pollEvery)
	}
	return nil, nil, fmt.Errorf("%s: %w", path, last)
}

func chownAll(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}
