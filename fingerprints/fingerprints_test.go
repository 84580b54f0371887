package fingerprints

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// testKey signs every test certificate; one key keeps the tests fast.
var testKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// fixed time, so the tests never depend on the clock.
var notBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCert(t testing.TB, tmpl, parent *x509.Certificate) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &testKey().PublicKey, testKey())
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newCA returns a self-signed CA with the given subject and email SANs.
func newCA(t testing.TB, subject pkix.Name, emails ...string) *x509.Certificate {
	return mustCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               subject,
		EmailAddresses:        emails,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil)
}

// newLeaf returns a leaf for host issued by ca, with an optional subject O.
func newLeaf(t testing.TB, ca *x509.Certificate, host string, orgs ...string) *x509.Certificate {
	return mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host, Organization: orgs},
		DNSNames:     []string{host},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
}

func name(cn string, o ...string) pkix.Name { return pkix.Name{CommonName: cn, Organization: o} }

type chainCase struct {
	name   string
	ca     pkix.Name
	emails []string // email SANs of the CA
	leafO  string   // leaf subject O
	sendCA bool     // chain is [leaf, ca] rather than [leaf]
	want   Match    // Product "" means no match
}

// productCases hold at least one positive case per product.
var productCases = []chainCase{
	{name: "zscaler root", ca: name("Zscaler Root CA", "Zscaler Inc."), sendCA: true,
		want: Match{"Zscaler", 1, "subject O", "Zscaler Inc."}},
	{name: "zscaler leaf only", ca: name("Zscaler Intermediate Root CA (zscaler.net)"),
		want: Match{"Zscaler", 0, "issuer CN", "Zscaler Intermediate Root CA (zscaler.net)"}},
	{name: "netskope", ca: name("certadmin", "Netskope Inc."),
		want: Match{"Netskope", 0, "issuer O", "Netskope Inc."}},
	{name: "netskope tenant", ca: name("ca.acme-corp.goskope.com", "Acme Corp"), sendCA: true,
		want: Match{"Netskope", 1, "subject CN", "ca.acme-corp.goskope.com"}},
	{name: "palo alto", ca: name("Forward Trust", "Palo Alto Networks"),
		want: Match{"Palo Alto Networks", 0, "issuer O", "Palo Alto Networks"}},
	{name: "pan-fw", ca: name("PAN-FW Trust CA"), sendCA: true,
		want: Match{"Palo Alto Networks", 1, "subject CN", "PAN-FW Trust CA"}},
	{name: "fortinet", ca: name("FG100F1234567890", "Fortinet Ltd."),
		want: Match{"Fortinet", 0, "issuer O", "Fortinet Ltd."}},
	{name: "fortigate cn", ca: name("FortiGate CA"), sendCA: true,
		want: Match{"Fortinet", 1, "subject CN", "FortiGate CA"}},
	{name: "fortinet default ca", ca: name("Fortinet_CA_SSL"),
		want: Match{"Fortinet", 0, "issuer CN", "Fortinet_CA_SSL"}},
	{name: "fortinet email", ca: name("fw01", "Acme"), emails: []string{"support@fortinet.com"}, sendCA: true,
		want: Match{"Fortinet", 1, "email", "support@fortinet.com"}},
	{name: "cisco umbrella", ca: name("Cisco Umbrella Root CA", "Cisco"),
		want: Match{"Cisco Umbrella", 0, "issuer CN", "Cisco Umbrella Root CA"}},
	{name: "cisco", ca: name("WSA Demo", "Cisco Systems, Inc."),
		want: Match{"Cisco", 0, "issuer O", "Cisco Systems, Inc."}},
	{name: "forcepoint", ca: name("Forcepoint Cloud CA", "Forcepoint LLC"), sendCA: true,
		want: Match{"Forcepoint", 1, "subject O", "Forcepoint LLC"}},
	{name: "websense", ca: name("proxy", "Websense, Inc."),
		want: Match{"Forcepoint", 0, "issuer O", "Websense, Inc."}},
	{name: "blue coat", ca: name("sg.example", "Blue Coat Systems, Inc."),
		want: Match{"Blue Coat", 0, "issuer O", "Blue Coat Systems, Inc."}},
	{name: "mcafee", ca: name("McAfee Web Gateway"),
		want: Match{"McAfee Web Gateway", 0, "issuer CN", "McAfee Web Gateway"}},
	{name: "sophos utm", ca: name("sophosutm Proxy CA"),
		want: Match{"Sophos", 0, "issuer CN", "sophosutm Proxy CA"}},
	{name: "sophos ca", ca: name("Sophos_CA_C01234", "Sophos"), sendCA: true,
		want: Match{"Sophos", 1, "subject O", "Sophos"}},
	{name: "cloudflare gateway", ca: name("Gateway CA - Cloudflare Managed G1", "Cloudflare, Inc."),
		want: Match{"Cloudflare Gateway", 0, "issuer CN", "Gateway CA - Cloudflare Managed G1"}},
	{name: "check point", ca: name("gw.example", "Check Point Software Technologies Ltd."),
		want: Match{"Check Point", 0, "issuer O", "Check Point Software Technologies Ltd."}},
	{name: "barracuda", ca: name("bwsg", "Barracuda Networks"),
		want: Match{"Barracuda", 0, "issuer O", "Barracuda Networks"}},
	{name: "contentkeeper", ca: name("ContentKeeper Appliance CA (3)"),
		want: Match{"ContentKeeper", 0, "issuer CN", "ContentKeeper Appliance CA (3)"}},
	{name: "cyberoam", ca: name("Cyberoam SSL CA", "Cyberoam Certificate Authority"),
		want: Match{"Cyberoam", 0, "issuer O", "Cyberoam Certificate Authority"}},
	{name: "sonicwall", ca: name("192.168.168.168", "HTTPS Management Certificate for SonicWALL (self-signed)"),
		want: Match{"SonicWall", 0, "issuer O", "HTTPS Management Certificate for SonicWALL (self-signed)"}},
	{name: "smoothwall", ca: name("Smoothwall-default-root-certificate-authority"),
		want: Match{"Smoothwall", 0, "issuer CN", "Smoothwall-default-root-certificate-authority"}},
	{name: "trend micro", ca: name("IWSS.TREND"),
		want: Match{"Trend Micro IWSS", 0, "issuer CN", "IWSS.TREND"}},
	{name: "netspark", ca: name("www.netspark.com"),
		want: Match{"NetSpark", 0, "issuer CN", "www.netspark.com"}},
	{name: "aruba", ca: name("mobility-controller", "Aruba Networks"),
		want: Match{"Aruba", 0, "issuer O", "Aruba Networks"}},
	{name: "unifi", ca: name("UniFi", "Ubiquiti Inc."),
		want: Match{"Ubiquiti", 0, "issuer O", "Ubiquiti Inc."}},
	{name: "kaspersky", ca: name("Kaspersky Anti-Virus Personal Root Certificate"),
		want: Match{"Kaspersky", 0, "issuer CN", "Kaspersky Anti-Virus Personal Root Certificate"}},
	{name: "eset", ca: name("ESET SSL Filter CA"),
		want: Match{"ESET", 0, "issuer CN", "ESET SSL Filter CA"}},
	{name: "avast", ca: name("avast! Web/Mail Shield Root"),
		want: Match{"Avast/AVG/Norton", 0, "issuer CN", "avast! Web/Mail Shield Root"}},
	{name: "norton", ca: name("Norton Web/Mail Shield Root"), sendCA: true,
		want: Match{"Avast/AVG/Norton", 1, "subject CN", "Norton Web/Mail Shield Root"}},
	{name: "bitdefender", ca: name("Bitdefender Personal CA.Net-Defender"),
		want: Match{"Bitdefender", 0, "issuer CN", "Bitdefender Personal CA.Net-Defender"}},
	{name: "mitmproxy", ca: name("mitmproxy", "mitmproxy"),
		want: Match{"mitmproxy", 0, "issuer CN", "mitmproxy"}},
	{name: "burp", ca: name("PortSwigger CA", "PortSwigger"),
		want: Match{"Burp Suite", 0, "issuer CN", "PortSwigger CA"}},
	{name: "fiddler", ca: name("DO_NOT_TRUST_FiddlerRoot", "DO_NOT_TRUST"),
		want: Match{"Fiddler", 0, "issuer CN", "DO_NOT_TRUST_FiddlerRoot"}},
	{name: "charles", ca: name("Charles Proxy CA (1 Jan 2025, laptop)"),
		want: Match{"Charles Proxy", 0, "issuer CN", "Charles Proxy CA (1 Jan 2025, laptop)"}},
	{name: "kazakhstan 2019", ca: name("Qaznet Trust Network"),
		want: Match{"Kazakhstan national MITM", 0, "issuer CN", "Qaznet Trust Network"}},
	{name: "kazakhstan 2020", ca: name("Information Security Certification Authority"), sendCA: true,
		want: Match{"Kazakhstan national MITM", 1, "subject CN", "Information Security Certification Authority"}},
	{name: "goproxy", ca: name("Acme Lab Root"), leafO: "GoProxy untrusted MITM proxy Inc", sendCA: true,
		want: Match{"goproxy", 0, "subject O", "GoProxy untrusted MITM proxy Inc"}},
	{name: "case varies", ca: name("ZSCALER ROOT CA"),
		want: Match{"Zscaler", 0, "issuer CN", "ZSCALER ROOT CA"}},
	{name: "CA before leaf subject", ca: name("Zscaler Root CA"), leafO: "GoProxy untrusted MITM proxy Inc", sendCA: true,
		want: Match{"Zscaler", 1, "subject CN", "Zscaler Root CA"}},
}

// negativeCases are public-looking or look-alike names that must not be named.
var negativeCases = []chainCase{
	{name: "digicert", ca: name("DigiCert Global G2 TLS RSA SHA256 2020 CA1", "DigiCert Inc"), sendCA: true},
	{name: "lets encrypt", ca: name("R3", "Let's Encrypt"), sendCA: true},
	{name: "cloudflare public", ca: name("Cloudflare Inc ECC CA-3", "Cloudflare, Inc."), sendCA: true},
	{name: "fan club", ca: name("MyFortinetFanClub", "FortinetFanClub"), sendCA: true},
	{name: "aruba pec", ca: name("ArubaPEC S.p.A. NG CA 3", "Aruba PEC S.p.A."), sendCA: true},
	{name: "cisco mention", ca: name("CA", "Friends of Cisco Systems"), sendCA: true},
	{name: "netskope root cn alone", ca: name("certadmin"), sendCA: true},
	{name: "real site subject", ca: name("HydrantID Server CA O1", "IdenTrust"), leafO: "Cisco Systems, Inc.", sendCA: true},
	{name: "generic english", ca: name("Corporate Information Security Certification Authority"), sendCA: true},
}

func (c chainCase) chain(t testing.TB) []*x509.Certificate {
	ca := newCA(t, c.ca, c.emails...)
	var orgs []string
	if c.leafO != "" {
		orgs = append(orgs, c.leafO)
	}
	chain := []*x509.Certificate{newLeaf(t, ca, "npm.lab.example", orgs...)}
	if c.sendCA {
		chain = append(chain, ca)
	}
	return chain
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	for _, tc := range slices.Concat(productCases, negativeCases) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Identify(tc.chain(t))
			if ok != (tc.want.Product != "") {
				t.Errorf("Identify ok = %v, want %v (match %+v)", ok, !ok, got)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Identify mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdentifyOddChains(t *testing.T) {
	t.Parallel()
	zs := newCA(t, name("Zscaler Root CA"))
	emailInDN := name("fw01")
	emailInDN.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidEmail, Value: "support@fortinet.com"}}
	long := "Zscaler " + strings.Repeat("é", 100)
	tests := []struct {
		name  string
		chain []*x509.Certificate
		want  Match
	}{
		{"nil chain", nil, Match{}},
		{"empty chain", []*x509.Certificate{}, Match{}},
		{"nil entries", []*x509.Certificate{nil, nil}, Match{}},
		{"nil leaf", []*x509.Certificate{nil, zs}, Match{"Zscaler", 1, "subject CN", "Zscaler Root CA"}},
		{"self-signed leaf", []*x509.Certificate{zs}, Match{"Zscaler", 0, "issuer CN", "Zscaler Root CA"}},
		{"email in DN", []*x509.Certificate{newLeaf(t, newCA(t, emailInDN), "x.test")},
			Match{"Fortinet", 0, "email", "support@fortinet.com"}},
		{"long value", []*x509.Certificate{newCA(t, name("x", long))},
			Match{"Zscaler", 0, "issuer O", truncate(long, maxValue)}},
	}
	for _, tc := range tests {
		got, _ := Identify(tc.chain)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: Identify mismatch (-want +got):\n%s", tc.name, diff)
		}
		if len(got.Value) > maxValue || !utf8.ValidString(got.Value) {
			t.Errorf("%s: Value %q is longer than %d bytes or not UTF-8", tc.name, got.Value, maxValue)
		}
	}
}

// TestNoPublicRootMatches checks that no root of the public Mozilla bundle is
// named as an interception product, whether it appears as a CA or as the issuer.
func TestNoPublicRootMatches(t *testing.T) {
	t.Parallel()
	n := 0
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if m, ok := Identify([]*x509.Certificate{c, c}); ok {
			t.Errorf("public root %q matches %+v", c.Subject, m)
		}
	}
	if n < 100 {
		t.Fatalf("only %d roots in the bundle", n)
	}
}

func TestProductsCovered(t *testing.T) {
	t.Parallel()
	got := Products()
	if !slices.IsSorted(got) {
		t.Errorf("Products() not sorted: %q", got)
	}
	if len(got) != len(database()) {
		t.Errorf("Products() has %d names, database %d entries: duplicate product?", len(got), len(database()))
	}
	var tested []string
	for _, tc := range productCases {
		tested = append(tested, tc.want.Product)
	}
	slices.Sort(tested)
	if diff := cmp.Diff(got, slices.Compact(tested)); diff != "" {
		t.Errorf("products without a test case (-Products +tested):\n%s", diff)
	}
	for _, e := range database() {
		if len(e.names)+len(e.leafSubject) == 0 {
			t.Errorf("product %q has no matcher", e.product)
		}
	}
}

func TestPreds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    pred
		v    string
		want bool
	}{
		{prefix("Fortinet"), "fortinet ltd.", true},
		{prefix("Fortinet"), "Fortinet_CA_SSL", true},
		{prefix("Fortinet"), "FortinetFanClub", false},
		{prefix("Fortinet"), "MyFortinet", false},
		{word("SonicWALL"), "for Sonicwall (self-signed)", true},
		{word("SonicWALL"), "NotSonicWALLs", false},
		{exact("mitmproxy"), " MITMProxy ", true},
		{exact("mitmproxy"), "mitmproxy2", false},
		{word("Aruba").except(word("S.p.A")), "Aruba PEC S.p.A.", false},
	}
	for _, tc := range tests {
		if got := tc.p(tc.v); got != tc.want {
			t.Errorf("pred(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestFieldString(t *testing.T) {
	t.Parallel()
	var got []string
	for f := field(0); f <= fieldEmail+1; f++ {
		got = append(got, f.String())
	}
	want := []string{"unknown", "issuer CN", "issuer O", "subject CN", "subject O", "email", "unknown"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("field.String mismatch (-want +got):\n%s", diff)
	}
}

func FuzzIdentify(f *testing.F) {
	for _, tc := range productCases[:4] {
		for _, c := range tc.chain(f) {
			f.Add(c.Raw)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		for _, chain := range [][]*x509.Certificate{{c}, {c, c}, {nil, c}} {
			if m, ok := Identify(chain); ok && (len(m.Value) > maxValue || m.Product == "") {
				t.Errorf("bad match %+v", m)
			}
		}
	})
}

// TestWordMatchesLaterOccurrence: a whole-word match may follow a
// non-match in the same value, and word edges hold around non-ASCII.
func TestWordMatchesLaterOccurrence(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		want           bool
	}{
		{"Fortinet", "MyFortinet Fortinet CA", true},
		{"Fortinet", "MyFortinetFanClub", false},
		{"Fortinet", "ÄFortinet", false},
		{"Fortinet", "é-Fortinet-é", true},
		{"Fortinet", "", false},
		{"Sophos SSL CA_", "sophos ssl ca_1234", true},
	} {
		if got := word(tc.pattern)(tc.value); got != tc.want {
			t.Errorf("word(%q)(%q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
	if !prefix("Fortinet")("  fortinet_CA") || prefix("Fortinet")("FortinetX") || !exact("Zscaler Inc.")(" zscaler inc. ") {
		t.Error("prefix/exact edges")
	}
}
