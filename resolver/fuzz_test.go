package resolver

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// FuzzParseServer checks that whatever ParseServer accepts is usable and
// reads the same when written back in canonical form.
func FuzzParseServer(f *testing.F) {
	for _, s := range []string{
		"udp://192.0.2.53:53", "tcp://192.0.2.53", "udp://[2001:db8::53]", "udp://[fe80::1%eth0]:53",
		"tls://192.0.2.53:853#dns.lab.example", "tls://[2001:db8::53]", "https://dns.lab.example/dns-query",
		"https://192.0.2.53:8443/q?x=1", "udp://2001:db8::53", "tls://192.0.2.53#", "https://u@h/p#f", "UDP://[::1]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		srv, err := ParseServer(spec)
		if err != nil {
			return
		}
		if srv.Spec != spec {
			t.Fatalf("Spec %q", srv.Spec)
		}
		var again string
		switch srv.Proto {
		case "udp", "tcp", "tls":
			ap, err := netip.ParseAddrPort(srv.Addr)
			if err != nil || ap.Port() == 0 || srv.URL != "" {
				t.Fatalf("%q: %+v", spec, srv)
			}
			again = srv.Proto + "://" + srv.Addr
			if srv.Proto == "tls" {
				if srv.ServerName == "" {
					t.Fatalf("%q: no server name", spec)
				}
				again += "#" + srv.ServerName
			} else if srv.ServerName != "" {
				t.Fatalf("%q: server name %q", spec, srv.ServerName)
			}
		case "https":
			if srv.Addr != "" || srv.URL == "" {
				t.Fatalf("%q: %+v", spec, srv)
			}
			again = srv.URL
		default:
			t.Fatalf("%q: proto %q", spec, srv.Proto)
		}
		srv2, err := ParseServer(again)
		if err != nil {
			t.Fatalf("%q, written back as %q: %v", spec, again, err)
		}
		srv2.Spec = srv.Spec
		if !cmp.Equal(srv, srv2, addrCmp) {
			t.Fatalf("%q, written back as %q: %+v, then %+v", spec, again, srv, srv2)
		}
	})
}

// FuzzSystemServers feeds arbitrary resolv.conf files: every server
// returned must be one ParseServer accepts, at most three.
func FuzzSystemServers(f *testing.F) {
	for _, s := range []string{
		"nameserver 127.0.0.53\noptions edns0 trust-ad\n",
		"nameserver 2001:db8::1\nnameserver fe80::1%eth0\nsearch lab.example\n",
		"nameserver dns.lab.example\n#nameserver 1.2.3.4\nnameserver\n",
		"nameserver 1.1.1.1\nnameserver 1.1.1.2\nnameserver 1.1.1.3\nnameserver 1.1.1.4\n",
		"nameserver fe80::1%a/b\n",
		"",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		servers, err := SystemServers(path)
		if err != nil {
			if len(servers) != 0 {
				t.Fatal("servers with an error")
			}
			return
		}
		if len(servers) == 0 || len(servers) > 3 {
			t.Fatalf("%d servers", len(servers))
		}
		for _, s := range servers {
			p, err := ParseServer(strings.TrimPrefix(s.Spec, "system "))
			if err != nil || !s.System || p.Addr != s.Addr || p.Proto != "udp" {
				t.Fatalf("%+v: %v", s, err)
			}
		}
	})
}

// FuzzDoHReply feeds arbitrary DoH responses through the reply path:
// reading, checking against the query, following aliases, merging.
func FuzzDoHReply(f *testing.F) {
	q := new(dns.Msg).SetQuestion("registry.lab.example.", dns.TypeA)
	q.Id = 0
	good := new(dns.Msg).SetReply(q)
	good.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "registry.lab.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "edge.lab.example."},
		&dns.A{Hdr: dns.RR_Header{Name: "edge.lab.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: []byte{198, 51, 100, 7}},
	}
	wire, err := good.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(200, "application/dns-message", wire)
	f.Add(200, "application/dns-message; charset=binary", wire[:len(wire)-2])
	f.Add(404, "text/html", []byte("<html>blocked</html>"))
	f.Add(200, "application/dns-message", []byte{0, 0, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		resp := &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{"Content-Type": {ctype}}, Body: io.NopCloser(bytes.NewReader(body))}
		r, err := readDoHReply(resp)
		if err != nil {
			if failureOf(err) == "" {
				t.Fatalf("error without a failure: %v", err)
			}
			return
		}
		if status != 200 || len(body) > maxDoHReply {
			t.Fatalf("status %d, %d bytes accepted", status, len(body))
		}
		rep := replyOf(q, r)
		ans := merge(rep, reply{qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess})
		if rep.err != nil {
			return
		}
		if ans.Rcode == "" || ans.Failure != "" {
			t.Fatalf("answered without an rcode: %+v", ans)
		}
		if !slices.IsSortedFunc(ans.Addrs, netip.Addr.Compare) || len(slices.Compact(slices.Clone(ans.Addrs))) != len(ans.Addrs) {
			t.Fatalf("addresses not sorted and unique: %v", ans.Addrs)
		}
		for _, a := range ans.Addrs {
			if !a.Is4() {
				t.Fatalf("%v in an answer to A", a)
			}
		}
		if len(ans.Addrs) > 0 && ans.MinTTL > rep.ttl {
			t.Fatalf("MinTTL %d above %d", ans.MinTTL, rep.ttl)
		}
	})
}

// FuzzParseHosts checks that any hosts file parses without panicking into
// names in canonical form with valid, sorted, distinct addresses, and that
// nsswitch.conf parsing returns one of its orders.
func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
		"10.20.0.5 registry.lab.example Mirror.Lab.Example. # pinned\n0.0.0.0 ads.lab.example\n",
		"fe80::1%eth0 router\nbad line\n\n#\n",
		"hosts: mymachines resolve [!UNAVAIL=return] files myhostname dns\n",
		"hosts: dns [ NOTFOUND=return files\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, as := range parseHosts(data) {
			if name == "" || name != hostsKey(name) || len(as) == 0 {
				t.Fatalf("name %q with %v", name, as)
			}
			if !slices.IsSortedFunc(as, netip.Addr.Compare) || len(slices.Compact(slices.Clone(as))) != len(as) {
				t.Fatalf("%q: addresses %v not sorted and distinct", name, as)
			}
			for _, a := range as {
				if !a.IsValid() {
					t.Fatalf("%q: invalid address", name)
				}
			}
		}
		if o := nsswitchOrder(data); o != HostsFirst && o != HostsAfterDNS && o != HostsNever {
			t.Fatalf("order %v", o)
		}
	})
}
