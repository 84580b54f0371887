package toolchain

import (
	"net/netip"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseGOPROXY returns the proxy hosts of a GOPROXY list, in order. Entries
// are separated by commas or pipes; "direct" and "off" name no host, nor do
// file URLs. As the go command does, an entry with a dot, colon or slash
// but no scheme is taken as https.
func ParseGOPROXY(v string) []Host {
	var hosts []Host
	for _, entry := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '|' }) {
		entry = strings.TrimSpace(entry)
		if entry == "direct" || entry == "off" {
			continue
		}
		if strings.ContainsAny(entry, ".:/") && !strings.Contains(entry, ":/") &&
			!path.IsAbs(entry) && !filepath.IsAbs(entry) {
			entry = "https://" + entry
		}
		hosts = append(hosts, ParseRegistry(entry, "go env GOPROXY")...)
	}
	return hosts
}

// ParseGOSUMDB returns the checksum database host of a GOSUMDB value:
// "off" names none; "name" and "name+key" are fetched from https://name;
// "name+key url" from url.
func ParseGOSUMDB(v string) []Host {
	f := strings.Fields(v)
	switch {
	case len(f) == 2:
		return ParseRegistry(f[1], "go env GOSUMDB")
	case len(f) != 1 || f[0] == "off":
		return nil
	}
	name, _, _ := strings.Cut(f[0], "+")
	if strings.ContainsAny(name, ":/") {
		return nil // a name is a bare host; anything else is not a GOSUMDB
	}
	return ParseRegistry("https://"+name, "go env GOSUMDB")
}

// ParseRegistry returns the host of an http or https URL, with the scheme's
// default port when none is given. Anything else, including garbage, yields
// no host.
func ParseRegistry(v, source string) []Host {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	if !plausibleHost(host) {
		return nil
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil
		}
		port = n
	}
	return []Host{{Host: host, Port: port, Source: source}}
}

// plausibleHost refuses what url.Parse lets through but no tool could dial.
// The config package validates strictly when hosts become targets.
func plausibleHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
