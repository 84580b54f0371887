package ranges

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// cmpPrefix compares netip values by value; cmp cannot see their fields.
var cmpPrefix = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// sampleFiles maps each provider to its official-format samples, in the
// order Parse wants them.
var sampleFiles = map[string][]string{
	"aws":        {"aws/ip-ranges.json"},
	"cloudflare": {"cloudflare/ips-v4", "cloudflare/ips-v6"},
	"fastly":     {"fastly/public-ip-list.json"},
	"github":     {"github/meta.json"},
	"google":     {"google/goog.json"},
}

func readSamples(t testing.TB, provider string) [][]byte {
	t.Helper()
	var data [][]byte
	for _, f := range sampleFiles[provider] {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b)
	}
	return data
}

// sampleWant is what the samples under testdata/ parse to.
var sampleWant = map[string]Provider{
	"aws": {
		Prefixes: pfx("192.0.2.0/24", "192.0.2.128/26", "198.51.100.0/24", "203.0.113.0/28",
			"2001:db8::/36", "2001:db8:1000::/40", "2001:db8:2000::/40"),
		Services: map[string][]netip.Prefix{
			"AMAZON":     pfx("192.0.2.0/24", "198.51.100.0/24", "2001:db8::/36"),
			"CLOUDFRONT": pfx("198.51.100.0/24", "2001:db8:1000::/40"),
			"EC2":        pfx("192.0.2.128/26"),
			"S3":         pfx("203.0.113.0/28", "2001:db8:2000::/40"),
		},
	},
	"cloudflare": {
		Prefixes: pfx("192.0.2.0/25", "192.0.2.128/25", "198.51.100.0/24", "2001:db8:100::/40", "2001:db8:200::/40"),
	},
	"fastly": {
		Prefixes: pfx("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/25", "2001:db8:a::/48", "2001:db8:b::/48"),
	},
	"github": {
		// Only web, api, git and packages: the 203.0.113.0/24 and
		// 2001:db8:ffff::/48 ranges under hooks, actions, pages… stay out.
		Prefixes: pfx("192.0.2.0/28", "192.0.2.1/32", "192.0.2.16/28", "192.0.2.32/28", "192.0.2.48/28",
			"192.0.2.64/28", "198.51.100.0/26", "2001:db8:10::/48", "2001:db8:20::/48", "2001:db8:30::/48"),
		Services: map[string][]netip.Prefix{
			"api":      pfx("192.0.2.1/32", "192.0.2.32/28", "2001:db8:20::/48"),
			"git":      pfx("192.0.2.0/28", "192.0.2.48/28", "2001:db8:30::/48"),
			"packages": pfx("192.0.2.64/28", "198.51.100.0/26"),
			"web":      pfx("192.0.2.0/28", "192.0.2.16/28", "2001:db8:10::/48"),
		},
	},
	"google": {
		Prefixes: pfx("192.0.2.0/24", "198.51.100.0/25", "198.51.100.128/25", "2001:db8::/33", "2001:db8:8000::/33"),
	},
}

func TestParseSamples(t *testing.T) {
	for provider, want := range sampleWant {
		t.Run(provider, func(t *testing.T) {
			got, err := Parse(provider, readSamples(t, provider))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmpPrefix); diff != "" {
				t.Errorf("Parse(%s) mismatch (-want +got):\n%s", provider, diff)
			}
		})
	}
}

func files(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestParseNormalises checks that unmasked and IPv4-mapped prefixes come out
// masked and in their IPv4 form, and that duplicates collapse.
func TestParseNormalises(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		data     [][]byte
		want     Provider
	}{
		{
			name:     "github unknown content ignored",
			provider: "github",
			data: files(`{"web":["192.0.2.1/24","::ffff:198.51.100.7/120","192.0.2.0/24"],
				"hooks":["not a CIDR"],"new_key":7,"ssh_keys":["ssh-ed25519 AAAA"],"domains":{"x":[1]},
				"verifiable_password_authentication":true}`),
			want: Provider{
				Prefixes: pfx("192.0.2.0/24", "198.51.100.0/24"),
				Services: map[string][]netip.Prefix{"web": pfx("192.0.2.0/24", "198.51.100.0/24")},
			},
		},
		{
			name:     "github null service",
			provider: "github",
			data:     files(`{"web":null,"git":["2001:DB8::1/32"]}`),
			want: Provider{
				Prefixes: pfx("2001:db8::/32"),
				Services: map[string][]netip.Prefix{"git": pfx("2001:db8::/32")},
			},
		},
		{
			name:     "google",
			provider: "google",
			data: files(`{"syncToken":"1","creationTime":"x","prefixes":[{"ipv4Prefix":"192.0.2.77/24"},
				{"ipv6Prefix":"::ffff:203.0.113.9/120"},{"ipv6Prefix":"2001:db8::1/32"},{"ipv4Prefix":"192.0.2.0/24","future":1}]}`),
			want: Provider{Prefixes: pfx("192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32")},
		},
		{
			name:     "cloudflare CRLF blank lines spaces",
			provider: "cloudflare",
			data:     files("192.0.2.9/24\r\n\r\n 198.51.100.0/24\t\r\n\r\n", "2001:DB8::1/32\n::ffff:192.0.2.0/120"),
			want:     Provider{Prefixes: pfx("192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32")},
		},
		{
			name:     "fastly",
			provider: "fastly",
			data:     files(`{"addresses":["203.0.113.200/24"],"ipv6_addresses":["::ffff:192.0.2.0/120","2001:db8:0:0:1::/48"]}`),
			want:     Provider{Prefixes: pfx("192.0.2.0/24", "203.0.113.0/24", "2001:db8::/48")},
		},
		{
			name:     "aws",
			provider: "aws",
			data: files(`{"prefixes":[{"ip_prefix":"192.0.2.5/24","service":"CLOUDFRONT"}],
				"ipv6_prefixes":[{"ipv6_prefix":"::ffff:192.0.2.0/120","service":"CLOUDFRONT"}]}`),
			want: Provider{
				Prefixes: pfx("192.0.2.0/24"),
				Services: map[string][]netip.Prefix{"CLOUDFRONT": pfx("192.0.2.0/24")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.provider, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpPrefix); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		data     [][]byte
		want     string // the whole error, or its start when it ends in " …"
	}{
		{"unknown provider", "azure", files("{}"), `ranges: unknown provider "azure" (known: aws, cloudflare, fastly, github, google)`},
		{"file count", "cloudflare", files("192.0.2.0/24"), `ranges: cloudflare: got 1 files, want 2`},

		{"github malformed", "github", files(`{"web": [`), `ranges: github: malformed JSON: …`},
		{"github html", "github", files(`<html>blocked</html>`), `ranges: github: malformed JSON: …`},
		{"github not an object", "github", files(`["192.0.2.0/24"]`), `ranges: github: unexpected JSON: …`},
		{"github null", "github", files(`null`), `ranges: github: no prefixes in the list`},
		{"github no service keys", "github", files(`{"hooks":["203.0.113.0/24"]}`), `ranges: github: no prefixes in the list`},
		{"github service not array", "github", files(`{"web":"192.0.2.0/24"}`), `ranges: github: web: want an array of CIDR strings, got a string`},
		{"github element not string", "github", files(`{"api":["192.0.2.0/24",{"cidr":"x"}]}`), `ranges: github: api[1]: want a CIDR string, got an object`},
		{"github bad CIDR", "github", files(`{"api":["192.0.2.0/24","192.0.2.300/24"]}`), `ranges: github: api[1]: invalid CIDR "192.0.2.300/24"`},
		{"github bare address", "github", files(`{"git":["192.0.2.1"]}`), `ranges: github: git[0]: invalid CIDR "192.0.2.1"`},
		{"github zone", "github", files(`{"git":["fe80::1%eth0/64"]}`), `ranges: github: git[0]: invalid CIDR "fe80::1%eth0/64"`},
		{"github long value bounded", "github", files(`{"packages":["` + strings.Repeat("9", 100) + `"]}`),
			`ranges: github: packages[0]: invalid CIDR "` + strings.Repeat("9", 48) + `"…`},

		{"google malformed", "google", files(`{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"}`), `ranges: google: malformed JSON: …`},
		{"google prefixes not array", "google", files(`{"prefixes":{}}`), `ranges: google: unexpected JSON: …`},
		{"google prefix wrong type", "google", files(`{"prefixes":[{"ipv4Prefix":5}]}`), `ranges: google: unexpected JSON: …`},
		{"google both", "google", files(`{"prefixes":[{"ipv4Prefix":"192.0.2.0/24","ipv6Prefix":"2001:db8::/32"}]}`),
			`ranges: google: prefixes[0]: want exactly one of ipv4Prefix and ipv6Prefix`},
		{"google neither", "google", files(`{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"},{"service":"x"}]}`),
			`ranges: google: prefixes[1]: want exactly one of ipv4Prefix and ipv6Prefix`},
		{"google wrong family", "google", files(`{"prefixes":[{"ipv4Prefix":"2001:db8::/32"}]}`),
			`ranges: google: prefixes[0]: "2001:db8::/32" is not an IPv4 prefix`},
		{"google bad CIDR", "google", files(`{"prefixes":[{"ipv6Prefix":"2001:db8::/129"}]}`),
			`ranges: google: prefixes[0]: invalid CIDR "2001:db8::/129"`},
		{"google empty", "google", files(`{"syncToken":"1","prefixes":[]}`), `ranges: google: no prefixes in the list`},

		{"cloudflare comment", "cloudflare", files("192.0.2.0/24\n# comment\n", "2001:db8::/32\n"),
			`ranges: cloudflare: ips-v4 line 2: invalid CIDR "# comment"`},
		{"cloudflare line numbers count blank lines", "cloudflare", files("192.0.2.0/24\n", "\r\n\r\n2001:db8::/32\r\nbogus\r\n"),
			`ranges: cloudflare: ips-v6 line 4: invalid CIDR "bogus"`},
		{"cloudflare html", "cloudflare", files("<html>\n", "2001:db8::/32\n"), `ranges: cloudflare: ips-v4 line 1: invalid CIDR "<html>"`},
		{"cloudflare swapped", "cloudflare", files("2001:db8::/32\n", "192.0.2.0/24\n"),
			`ranges: cloudflare: ips-v4 line 1: "2001:db8::/32" is not an IPv4 prefix`},
		{"cloudflare empty v6", "cloudflare", files("192.0.2.0/24\n", "\n\r\n"), `ranges: cloudflare: ips-v6: no prefixes in the list`},

		{"fastly malformed", "fastly", files(`{"addresses":["192.0.2.0/24"],}`), `ranges: fastly: malformed JSON: …`},
		{"fastly not an object", "fastly", files(`"192.0.2.0/24"`), `ranges: fastly: unexpected JSON: …`},
		{"fastly addresses not array", "fastly", files(`{"addresses":"192.0.2.0/24"}`), `ranges: fastly: addresses: want an array of CIDR strings, got a string`},
		{"fastly element number", "fastly", files(`{"addresses":[1]}`), `ranges: fastly: addresses[0]: want a CIDR string, got a number`},
		{"fastly v4 in v6 list", "fastly", files(`{"addresses":["192.0.2.0/24"],"ipv6_addresses":["198.51.100.0/24"]}`),
			`ranges: fastly: ipv6_addresses[0]: "198.51.100.0/24" is not an IPv6 prefix`},
		{"fastly empty", "fastly", files(`{}`), `ranges: fastly: no prefixes in the list`},

		{"aws malformed", "aws", files(`{"prefixes":[}`), `ranges: aws: malformed JSON: …`},
		{"aws prefix wrong type", "aws", files(`{"prefixes":[{"ip_prefix":5,"service":"AMAZON"}]}`), `ranges: aws: unexpected JSON: …`},
		{"aws missing prefix", "aws", files(`{"prefixes":[{"service":"AMAZON"}]}`), `ranges: aws: prefixes[0]: invalid CIDR ""`},
		{"aws missing service", "aws", files(`{"prefixes":[{"ip_prefix":"192.0.2.0/24"}]}`), `ranges: aws: prefixes[0]: 192.0.2.0/24 has no service`},
		{"aws v6 in v4 list", "aws", files(`{"prefixes":[{"ip_prefix":"2001:db8::/32","service":"AMAZON"}]}`),
			`ranges: aws: prefixes[0]: "2001:db8::/32" is not an IPv4 prefix`},
		{"aws bad v6", "aws", files(`{"ipv6_prefixes":[{"ipv6_prefix":"2001:db8::/32","service":"S3"},{"ipv6_prefix":"2001:db8:::/48","service":"S3"}]}`),
			`ranges: aws: ipv6_prefixes[1]: invalid CIDR "2001:db8:::/48"`},
		{"aws empty", "aws", files(`{"syncToken":"1","createDate":"x","prefixes":[],"ipv6_prefixes":[]}`), `ranges: aws: no prefixes in the list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.provider, tt.data)
			if err == nil {
				t.Fatalf("Parse = %v, want error %q", got, tt.want)
			}
			checkErr(t, err, tt.want)
		})
	}
}

// checkErr compares an error with want: the whole message, or its start
// when want ends in " …" (messages from encoding/json are not ours to pin).
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if start, ok := strings.CutSuffix(want, " …"); ok {
		if !strings.HasPrefix(err.Error(), start) {
			t.Errorf("error %q, want it to start with %q", err, start)
		}
		return
	}
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}
