package fingerprints

import "sync"

// database lists the products in the order Identify tries them: a narrower entry
// comes before a broader one that could also fire ("Cisco Umbrella" before
// "Cisco"). Patterns come from the reference table "Interception products and
// issuer patterns" (browser MITM-software lists and public issue reports). None
// may fire on a root of the public Mozilla bundle; TestNoPublicRootMatches holds
// that line. Products whose CA name is chosen by the administrator (squid
// ssl-bump, sslsplit, Palo Alto forward-trust) are caught by the generic signals,
// not here.
//
// It is built on first use, not at package init: its patterns compile to
// regular expressions, and every process that links the package (each
// check, before its first round trip) would pay for them whether or not a
// chain is ever identified.
var database = sync.OnceValue(func() []entry {
	return []entry{
		{product: "Zscaler", names: []matcher{
			// "Zscaler Root CA", "Zscaler Intermediate Root CA (zscaler.net)", O "Zscaler Inc."
			org(prefix("Zscaler")),
			cn(prefix("Zscaler")),
		}},
		{product: "Netskope", names: []matcher{
			// The root's CN is "certadmin", far too generic to use alone.
			org(prefix("Netskope")),
			cn(re(`^ca\.[a-z0-9-]+\.goskope\.com$`)),
		}},
		{product: "Palo Alto Networks", names: []matcher{
			org(word("Palo Alto Networks"), word("PAN-FW")),
			cn(word("Palo Alto Networks"), word("PAN-FW")),
		}},
		{product: "Fortinet", names: []matcher{
			// FortiGate's built-in CAs are "Fortinet_CA_SSL" and "Fortinet_CA_Untrusted".
			org(prefix("Fortinet")),
			cn(prefix("FortiGate CA"), prefix("Fortinet")),
			email(exact("support@fortinet.com")),
		}},
		{product: "Cisco Umbrella", names: []matcher{
			cn(prefix("Cisco Umbrella")),
		}},
		{product: "Cisco", names: []matcher{
			// Narrowed from "contains Cisco" to the whole O value, so that a name
			// that merely mentions Cisco does not fire.
			org(re(`^\s*cisco(\s+systems)?(,?\s+inc\.?)?\s*$`)),
		}},
		{product: "Forcepoint", names: []matcher{
			org(prefix("Forcepoint"), prefix("Websense")),
			cn(prefix("Forcepoint"), prefix("Websense")),
		}},
		{product: "Blue Coat", names: []matcher{
			org(prefix("Blue Coat"), prefix("BlueCoat")),
			cn(prefix("Blue Coat"), prefix("BlueCoat")),
		}},
		{product: "McAfee Web Gateway", names: []matcher{
			cn(prefix("McAfee Web Gateway")),
		}},
		{product: "Sophos", names: []matcher{
			// "Sophos SSL CA_…", "Sophos_CA_…", "sophosutm Proxy CA", "Sophos Web Appliance".
			org(prefix("Sophos")),
			cn(prefix("Sophos"), prefix("sophosutm")),
		}},
		{product: "Cloudflare Gateway", names: []matcher{
			// Not Cloudflare's public issuing CAs ("Cloudflare Inc ECC CA-3").
			cn(prefix("Gateway CA - Cloudflare Managed")),
		}},
		{product: "Check Point", names: []matcher{
			org(prefix("Check Point"), prefix("CheckPoint")),
		}},
		{product: "Barracuda", names: []matcher{
			org(prefix("Barracuda")),
		}},
		{product: "ContentKeeper", names: []matcher{
			cn(prefix("ContentKeeper")),
		}},
		{product: "Cyberoam", names: []matcher{
			org(prefix("Cyberoam")),
			cn(prefix("Cyberoam")),
		}},
		{product: "SonicWall", names: []matcher{
			// O "HTTPS Management Certificate for SonicWALL (self-signed)".
			org(word("SonicWALL")),
			cn(word("SonicWALL")),
		}},
		{product: "Smoothwall", names: []matcher{
			cn(prefix("Smoothwall")),
		}},
		{product: "Trend Micro IWSS", names: []matcher{
			cn(prefix("IWSS.TREND")),
		}},
		{product: "NetSpark", names: []matcher{
			cn(exact("www.netspark.com")),
			org(prefix("NetSpark")),
		}},
		{product: "Aruba", names: []matcher{
			// Aruba S.p.A. / ArubaPEC, an Italian trust service provider, is another
			// company: whole word only ("ArubaPEC" does not fire) and not "S.p.A.".
			org(word("Aruba").except(word("S.p.A"))),
			cn(word("Aruba").except(word("S.p.A"))),
		}},
		{product: "Ubiquiti", names: []matcher{
			org(word("Ubiquiti"), word("UniFi")),
			cn(word("UniFi"), word("Ubiquiti")),
		}},
		{product: "Kaspersky", names: []matcher{
			// "Kaspersky Anti-Virus Personal Root Certificate"; the product part varies.
			cn(prefix("Kaspersky")),
		}},
		{product: "ESET", names: []matcher{
			cn(prefix("ESET SSL Filter")),
		}},
		{product: "Avast/AVG/Norton", names: []matcher{
			cn(re(`^\s*(avast!|avg|norton) web/mail shield`)),
		}},
		{product: "Bitdefender", names: []matcher{
			cn(prefix("Bitdefender Personal CA")),
		}},
		{product: "mitmproxy", names: []matcher{
			cn(exact("mitmproxy")),
			org(exact("mitmproxy")),
		}},
		{product: "Burp Suite", names: []matcher{
			cn(prefix("PortSwigger")),
			org(prefix("PortSwigger")),
		}},
		{product: "Fiddler", names: []matcher{
			cn(prefix("DO_NOT_TRUST_FiddlerRoot")),
		}},
		{product: "Charles Proxy", names: []matcher{
			cn(prefix("Charles Proxy CA")),
		}},
		{product: "Kazakhstan national MITM", names: []matcher{
			// The second CN is generic English, so it must be the whole value.
			cn(prefix("Qaznet Trust Network"), exact("Information Security Certification Authority")),
			org(prefix("Qaznet Trust Network"), exact("Information Security Certification Authority")),
		}},
		{product: "goproxy", leafSubject: []matcher{
			// github.com/elazarl/goproxy forges every leaf with this organization; its
			// CA is whatever the embedding program configures.
			org(exact("GoProxy untrusted MITM proxy Inc")),
		}},
	}
})
