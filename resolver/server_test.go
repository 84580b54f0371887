package resolver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want Server
	}{
		{"udp://192.0.2.53:53", Server{Proto: "udp", Addr: "192.0.2.53:53"}},
		{"udp://192.0.2.53", Server{Proto: "udp", Addr: "192.0.2.53:53"}},
		{"UDP://192.0.2.53", Server{Proto: "udp", Addr: "192.0.2.53:53"}},
		{"tcp://192.0.2.53:5353", Server{Proto: "tcp", Addr: "192.0.2.53:5353"}},
		{"udp://[2001:db8::53]:53", Server{Proto: "udp", Addr: "[2001:db8::53]:53"}},
		{"udp://[2001:DB8:0::53]", Server{Proto: "udp", Addr: "[2001:db8::53]:53"}},
		{"udp://[fe80::1%eth0]:53", Server{Proto: "udp", Addr: "[fe80::1%eth0]:53"}},
		{"tls://192.0.2.53", Server{Proto: "tls", Addr: "192.0.2.53:853", ServerName: "192.0.2.53"}},
		{"tls://192.0.2.53:853#dns.lab.example", Server{Proto: "tls", Addr: "192.0.2.53:853", ServerName: "dns.lab.example"}},
		{"tls://[2001:db8::53]", Server{Proto: "tls", Addr: "[2001:db8::53]:853", ServerName: "2001:db8::53"}},
		{"tls://[fe80::1%eth0]:8853", Server{Proto: "tls", Addr: "[fe80::1%eth0]:8853", ServerName: "fe80::1"}},
		{"tls://192.0.2.53#192.0.2.54", Server{Proto: "tls", Addr: "192.0.2.53:853", ServerName: "192.0.2.54"}},
		{"https://dns.lab.example/dns-query", Server{Proto: "https", URL: "https://dns.lab.example/dns-query"}},
		{"https://192.0.2.53:8443/resolve?ct=1", Server{Proto: "https", URL: "https://192.0.2.53:8443/resolve?ct=1"}},
		{"https://[2001:db8::53]/dns-query", Server{Proto: "https", URL: "https://[2001:db8::53]/dns-query"}},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.spec)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		tt.want.Spec = tt.spec
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.spec, d)
		}
	}
}

func TestParseServerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ spec, want string }{
		{"", "missing scheme (want udp://, tcp://, tls:// or https://)"},
		{"192.0.2.53", "missing scheme (want udp://, tcp://, tls:// or https://)"},
		{"ftp://192.0.2.53", `unsupported scheme "ftp" (want udp, tcp, tls or https)`},
		{"quic://192.0.2.53:853", `unsupported scheme "quic" (want udp, tcp, tls or https)`},
		{"udp://", "missing address"},
		{"udp://dns.lab.example", `"dns.lab.example" is not an IP address (a resolver is given by address, not by name)`},
		{"tls://dns.lab.example:853", `"dns.lab.example" is not an IP address (a resolver is given by address, not by name)`},
		{"udp://192.0.2.53:0", `invalid port "0"`},
		{"udp://192.0.2.53:65536", `invalid port "65536"`},
		{"udp://192.0.2.53:", `invalid port ""`},
		{"tcp://192.0.2.53:dns", `invalid port "dns"`},
		{"udp://2001:db8::53", `IPv6 address "2001:db8::53" must be in brackets, as in [2001:db8::53]:53`},
		{"tls://2001:db8::53", `IPv6 address "2001:db8::53" must be in brackets, as in [2001:db8::53]:853`},
		{"udp://192.0.2.53/dns-query", `unexpected "/dns-query" after the address (want only ip[:port])`},
		{"tcp://user@192.0.2.53", `unexpected "@192.0.2.53" after the address (want only ip[:port])`},
		{"udp://[fe80::1%[]", `invalid zone "[" (want an interface name or index)`},
		{"udp://192.0.2.53#dns.lab.example", "a #server name applies only to tls://"},
		{"tls://192.0.2.53#", `invalid TLS server name ""`},
		{"tls://192.0.2.53#bad_name.lab.example", `invalid TLS server name "bad_name.lab.example"`},
		{"tls://192.0.2.53#-x.lab.example", `invalid TLS server name "-x.lab.example"`},
		{"https://dns.lab.example", "missing path (as in https://dns.example/dns-query)"},
		{"https://dns.lab.example/", "missing path (as in https://dns.example/dns-query)"},
		{"https://user:pw@dns.lab.example/dns-query", "user info not allowed in a DoH URL"},
		{"https://dns.lab.example/dns-query#x", "fragment not allowed in a DoH URL (its TLS name is its host)"},
		{"https://dns.lab.example/dns-query#", "fragment not allowed in a DoH URL (its TLS name is its host)"},
		{"https:///dns-query", "missing host"},
		{"https://bad_host/dns-query", `invalid host "bad_host"`},
		{"https://dns.lab.example:0/dns-query", `invalid port "0"`},
		{"https://dns.lab.example:/dns-query", `invalid port ""`},
		{"https://dns.lab.example:x/dns-query", `invalid URL: invalid port ":x" after host`},
	}
	for _, tt := range tests {
		_, err := ParseServer(tt.spec)
		if err == nil {
			t.Errorf("%q: no error, want %q", tt.spec, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.spec, err, tt.want)
		}
	}
}

func writeResolvConf(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSystemServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []string // Spec, Addr
	}{
		{"systemd-resolved stub", "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lab.example\n",
			[]string{"system udp://127.0.0.53:53"}},
		{"IPv4 and IPv6", "nameserver 192.0.2.1\nnameserver 2001:db8::1\n",
			[]string{"system udp://192.0.2.1:53", "system udp://[2001:db8::1]:53"}},
		{"link-local with zone", "nameserver fe80::1%eth0\n",
			[]string{"system udp://[fe80::1%eth0]:53"}},
		{"canonical form", "nameserver 2001:DB8:0:0::1\n",
			[]string{"system udp://[2001:db8::1]:53"}},
		{"names and junk skipped", "nameserver dns.lab.example\nnameserver\n; nameserver 192.0.2.9\n  nameserver   192.0.2.2   # trailing\nnameserver 192.0.2.3#x\n",
			[]string{"system udp://192.0.2.2:53"}},
		{"first three only", "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n",
			[]string{"system udp://192.0.2.1:53", "system udp://192.0.2.2:53", "system udp://192.0.2.3:53"}},
	}
	for _, tt := range tests {
		got, err := SystemServers(writeResolvConf(t, tt.content))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var specs []string
		for _, s := range got {
			specs = append(specs, s.Spec)
			if !s.System || s.Proto != "udp" || "system udp://"+s.Addr != s.Spec {
				t.Errorf("%s: %+v", tt.name, s)
			}
		}
		if d := cmp.Diff(tt.want, specs); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestSystemServersErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, content string }{
		{"empty file", ""},
		{"no usable nameserver", "search lab.example\nnameserver dns.lab.example\n"},
	} {
		path := writeResolvConf(t, tt.content)
		_, err := SystemServers(path)
		if want := "resolv.conf " + path + ": no nameserver"; err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", tt.name, err, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "absent")
	if _, err := SystemServers(missing); err == nil || !strings.HasPrefix(err.Error(), "resolv.conf: open "+missing) {
		t.Errorf("missing file: got %v", err)
	}
}
