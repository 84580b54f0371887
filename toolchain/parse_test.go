package toolchain

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGOPROXY(t *testing.T) {
	t.Parallel()
	const src = "go env GOPROXY"
	tests := []struct {
		in   string
		want []Host
	}{
		{"", nil},
		{"direct", nil},
		{"off", nil},
		{"https://proxy.lab.example,direct", []Host{{"proxy.lab.example", 443, src}}},
		{"https://a.lab.example|http://b.lab.example,off", []Host{{"a.lab.example", 443, src}, {"b.lab.example", 80, src}}},
		{"https://Proxy.LAB.example:8443/go/", []Host{{"proxy.lab.example", 8443, src}}},
		{"proxy.lab.example", []Host{{"proxy.lab.example", 443, src}}}, // no scheme: https, as the go command does
		{"proxy.lab.example:8080/mod", []Host{{"proxy.lab.example", 8080, src}}},
		{"https://[2001:db8::1]:8443", []Host{{"2001:db8::1", 8443, src}}},
		{" https://a.lab.example , https://a.lab.example ", []Host{{"a.lab.example", 443, src}, {"a.lab.example", 443, src}}},
		{"file:///srv/goproxy,direct", nil},
		{"/srv/goproxy", nil},
		{"https://", nil},
		{"https://proxy.lab.example:0", nil},
		{"https://proxy.lab.example:99999", nil},
		{"https://exa mple.lab.example", nil},
		{"https://a_b.lab.example", nil},
		{"https://%zz", nil},
		{"ftp://mirror.lab.example", nil},
		{",,,||", nil},
		{"justaword", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ParseGOPROXY(tt.in)); diff != "" {
			t.Errorf("ParseGOPROXY(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseGOSUMDB(t *testing.T) {
	t.Parallel()
	const src = "go env GOSUMDB"
	tests := []struct {
		in   string
		want []Host
	}{
		{"", nil},
		{"off", nil},
		{"sum.lab.example", []Host{{"sum.lab.example", 443, src}}},
		{"sum.lab.example+1234abcd+AQID", []Host{{"sum.lab.example", 443, src}}},
		{"sum.lab.example+1234abcd+AQID https://sumdb.lab.example/db", []Host{{"sumdb.lab.example", 443, src}}},
		{"sum.lab.example http://10.0.0.7:3000", []Host{{"10.0.0.7", 3000, src}}},
		{"  SUM.lab.example  ", []Host{{"sum.lab.example", 443, src}}},
		{"a b c", nil},
		{"sum.lab.example+key not-a-url", nil},
		{"https://sum.lab.example", nil},
		{"+key", nil},
		{"sum lab", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ParseGOSUMDB(tt.in)); diff != "" {
			t.Errorf("ParseGOSUMDB(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseRegistry(t *testing.T) {
	t.Parallel()
	const src = "npm config get registry"
	tests := []struct {
		in   string
		want []Host
	}{
		{"https://npm.lab.example/", []Host{{"npm.lab.example", 443, src}}},
		{"https://user:secret@npm.lab.example:4873/npm/\n", []Host{{"npm.lab.example", 4873, src}}},
		{"HTTP://npm.lab.example", []Host{{"npm.lab.example", 80, src}}},
		{"http://192.0.2.7:8080/simple", []Host{{"192.0.2.7", 8080, src}}},
		{"https://[fe80::1%25eth0]/", nil},
		{"undefined", nil},
		{"npm.lab.example", nil},
		{"", nil},
		{"https://npm.lab.example:https/", nil},
		{"\x00", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ParseRegistry(tt.in, src)); diff != "" {
			t.Errorf("ParseRegistry(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func checkHosts(t *testing.T, in string, hosts []Host) {
	for _, h := range hosts {
		if h.Host == "" || h.Port < 1 || h.Port > 65535 || h.Source == "" {
			t.Fatalf("%q: bad host %+v", in, h)
		}
	}
}

func FuzzParseGo(f *testing.F) {
	for _, s := range []string{
		"https://proxy.lab.example,direct", "a.lab.example|off", "file:///x", "https://[::1]:8443",
		"sum.lab.example+1234abcd+AQID https://sumdb.lab.example", "off", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		checkHosts(t, v, ParseGOPROXY(v))
		checkHosts(t, v, ParseGOSUMDB(v))
		checkHosts(t, v, ParseRegistry(v, "fuzz"))
	})
}
