package ranges

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkProvider asserts what every successful Parse promises: some
// prefixes, each masked and canonical, sorted without duplicates, services
// drawn from the prefixes, and a snapshot holding it survives a JSON round
// trip through Load's decoder.
func checkProvider(t *testing.T, p Provider) {
	t.Helper()
	if len(p.Prefixes) == 0 {
		t.Fatal("Parse succeeded with no prefixes")
	}
	checkList := func(what string, ps []netip.Prefix) {
		for i, q := range ps {
			if !q.IsValid() || q != q.Masked() || (q.Addr().Is4In6() && q.Bits() >= 96) {
				t.Fatalf("%s[%d] = %v is not canonical", what, i, q)
			}
			if i > 0 && ps[i-1].Compare(q) >= 0 {
				t.Fatalf("%s not sorted and unique at %d: %v, %v", what, i, ps[i-1], q)
			}
		}
	}
	checkList("prefixes", p.Prefixes)
	for name, ps := range p.Services {
		checkList("service "+name, ps)
		for _, q := range ps {
			if !slices.Contains(p.Prefixes, q) {
				t.Fatalf("service %s has %v, missing from the prefixes", name, q)
			}
		}
	}
	s := Snapshot{Version: Version, Providers: map[string]Provider{"p": p}}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decode(data)
	if err != nil {
		t.Fatalf("decode(%s): %v", data, err)
	}
	if diff := cmp.Diff(s, back, cmpPrefix); diff != "" {
		t.Fatalf("JSON round trip changed the snapshot (-before +after):\n%s", diff)
	}
}

func fuzzOne(f *testing.F, provider string, seeds ...string) {
	f.Add(readSamples(f, provider)[0])
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(provider, [][]byte{data})
		if err == nil {
			checkProvider(t, p)
		}
	})
}

func FuzzParseGitHub(f *testing.F) {
	fuzzOne(f, "github",
		`{"web":["192.0.2.1/24","::ffff:198.51.100.7/120"],"hooks":["x"],"domains":{"a":[1]}}`,
		`{"api":null,"git":[],"packages":["2001:db8::/32"]}`,
		`{"web":"192.0.2.0/24"}`, `[]`, `null`)
}

func FuzzParseGoogle(f *testing.F) {
	fuzzOne(f, "google",
		`{"prefixes":[{"ipv4Prefix":"192.0.2.77/24"},{"ipv6Prefix":"::ffff:203.0.113.9/120"}]}`,
		`{"prefixes":[{"ipv4Prefix":"192.0.2.0/24","ipv6Prefix":"2001:db8::/32"}]}`,
		`{"prefixes":[{}]}`)
}

func FuzzParseFastly(f *testing.F) {
	fuzzOne(f, "fastly",
		`{"addresses":["203.0.113.200/24"],"ipv6_addresses":["::ffff:192.0.2.0/120"]}`,
		`{"addresses":[1]}`, `{"addresses":"x"}`)
}

func FuzzParseAWS(f *testing.F) {
	fuzzOne(f, "aws",
		`{"prefixes":[{"ip_prefix":"192.0.2.5/24","service":"S3"}],"ipv6_prefixes":[{"ipv6_prefix":"::ffff:192.0.2.0/120","service":"S3"}]}`,
		`{"prefixes":[{"ip_prefix":"192.0.2.0/24"}]}`)
}

func FuzzParseCloudflare(f *testing.F) {
	s := readSamples(f, "cloudflare")
	f.Add(s[0], s[1])
	f.Add([]byte("192.0.2.9/24\r\n\r\n 198.51.100.0/24\t\r\n"), []byte("2001:DB8::1/32\n::ffff:192.0.2.0/120"))
	f.Add([]byte("# comment\n"), []byte("\n"))
	f.Fuzz(func(t *testing.T, v4, v6 []byte) {
		p, err := Parse("cloudflare", [][]byte{v4, v6})
		if err == nil {
			checkProvider(t, p)
		}
	})
}

// FuzzDecode covers Load: a snapshot file is user input. Whatever decodes
// must be canonical and survive being written and read again.
func FuzzDecode(f *testing.F) {
	f.Add(embedded)
	f.Add([]byte(`{"version":1,"providers":{"aws":{"source":"x","fetched":"2025-03-04T04:06:07Z",` +
		`"prefixes":["198.51.100.9/24","::ffff:192.0.2.0/120"],"services":{"S3":["198.51.100.1/24"]}}}}`))
	f.Add([]byte(`{"version":1,"providers":{"github":{"prefixes":[""]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decode(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(out)
		if err != nil {
			t.Fatalf("decode(%s): %v", out, err)
		}
		if diff := cmp.Diff(s, back, cmpPrefix); diff != "" {
			t.Fatalf("round trip changed the snapshot (-before +after):\n%s", diff)
		}
	})
}
