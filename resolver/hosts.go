package resolver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
)

// Build tools do not only ask DNS: the C library and Go's resolver read
// the hosts file first where nsswitch.conf says "files" before "dns", and
// that is where organisations pin an internal mirror (and where ad
// blockers and malware write their blocks). A name the hosts file answers
// is never sent to the system's DNS server, so judging that server's
// answer instead would judge an address no tool connects to.

// Default paths, as the C library reads them; a network namespace's own
// copies (ip netns exec) are bind-mounted over them.
const (
	DefaultHostsFile = "/etc/hosts"
	DefaultNSSwitch  = "/etc/nsswitch.conf"
)

// HostsOrder says when the system consults the hosts file for a name.
type HostsOrder int

// The orders nsswitch.conf's "hosts:" line gives.
const (
	// HostsFirst: the hosts file, then DNS for names it does not list.
	// The default when nsswitch.conf or its hosts line is absent, as for
	// Go's resolver.
	HostsFirst HostsOrder = iota
	// HostsAfterDNS: DNS, then the hosts file when DNS gave no address.
	HostsAfterDNS
	// HostsNever: the hosts line names no source that reads the file.
	HostsNever
)

func (o HostsOrder) String() string {
	switch o {
	case HostsFirst:
		return "files before dns"
	case HostsAfterDNS:
		return "dns before files"
	case HostsNever:
		return "no files"
	}
	return fmt.Sprintf("HostsOrder(%d)", int(o))
}

// ReadNSSwitch returns where the "hosts:" line of an nsswitch.conf puts
// the hosts file. "files" reads it, and so does "resolve": systemd-resolved
// answers from /etc/hosts itself before asking DNS. Other sources (mdns,
// myhostname, ldap) never answer a registry's name and are skipped, and
// action criteria such as [NOTFOUND=return] are not modelled. A missing
// file, or one without a hosts line, means HostsFirst; an unreadable one
// is an error (and HostsFirst).
func ReadNSSwitch(path string) (HostsOrder, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return HostsFirst, nil
	}
	if err != nil {
		return HostsFirst, fmt.Errorf("nsswitch: %w", err)
	}
	return nsswitchOrder(data), nil
}

func nsswitchOrder(data []byte) HostsOrder {
	for line := range strings.Lines(string(data)) {
		line, _, _ = strings.Cut(line, "#")
		db, sources, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(db) != "hosts" {
			continue
		}
		dnsSeen := false
		for _, src := range nssSources(sources) {
			switch src {
			case "files", "resolve":
				if dnsSeen {
					return HostsAfterDNS
				}
				return HostsFirst
			case "dns":
				dnsSeen = true
			}
		}
		return HostsNever
	}
	return HostsFirst
}

// nssSources lists the sources of a database line, without the bracketed
// action criteria, lower-cased.
func nssSources(s string) []string {
	var out []string
	for s != "" {
		s = strings.TrimLeft(s, " \t\r\n")
		if strings.HasPrefix(s, "[") {
			_, rest, ok := strings.Cut(s, "]")
			if !ok {
				break
			}
			s = rest
			continue
		}
		end := strings.IndexAny(s, " \t\r\n[")
		if end < 0 {
			end = len(s)
		}
		if end > 0 {
			out = append(out, strings.ToLower(s[:end]))
		}
		s = s[end:]
	}
	return out
}

// maxHostsFile bounds what is read of a hosts file. Blocklist hosts files
// run to a few hundred thousand lines; nothing legitimate is larger.
const maxHostsFile = 64 << 20

// Hosts is a hosts file and where the system consults it. It reads the
// file again when it changes, so a long-running service sees an edit at
// its next probe, and answers from memory otherwise. The zero Path reads
// DefaultHostsFile. Safe for concurrent use.
type Hosts struct {
	Path  string
	Order HostsOrder

	mu    sync.Mutex
	stamp hostsStamp
	names map[string][]netip.Addr
}

// hostsStamp tells whether the file changed since it was read.
type hostsStamp struct {
	mod  time.Time
	size int64
}

func (h *Hosts) path() string {
	if h.Path != "" {
		return h.Path
	}
	return DefaultHostsFile
}

// Spec is how answers from the file name their resolver: "hosts PATH".
func (h *Hosts) Spec() string { return "hosts " + h.path() }

// Lookup returns the hosts file's answer for name, as the C library's
// files source gives it: every address listed for the name, IPv4 and
// IPv6, as canonical name or alias, without regard to case or a final
// dot. ok is false when the file does not list the name, or cannot be
// read: the C library then goes on to DNS.
func (h *Hosts) Lookup(name string) (detector.DNSAnswer, bool) {
	names, err := h.load()
	if err != nil {
		return detector.DNSAnswer{}, false
	}
	addrs, ok := names[hostsKey(name)]
	if !ok {
		return detector.DNSAnswer{}, false
	}
	return detector.DNSAnswer{Resolver: h.Spec(), System: true, Source: detector.SourceHosts, Addrs: slices.Clone(addrs)}, true
}

// Check reads the file once and returns why it cannot be used, if it
// exists and cannot: a missing hosts file is no error.
func (h *Hosts) Check() error {
	_, err := h.load()
	return err
}

// load returns the file's entries, reading it when it changed.
func (h *Hosts) load() (map[string][]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path())
	if errors.Is(err, fs.ErrNotExist) {
		h.names, h.stamp = nil, hostsStamp{}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	stamp := hostsStamp{fi.ModTime(), fi.Size()}
	if h.names != nil && stamp == h.stamp {
		return h.names, nil
	}
	names, err := readHosts(h.path())
	if err != nil {
		return nil, err
	}
	h.names, h.stamp = names, stamp
	return names, nil
}

func readHosts(path string) (map[string][]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHostsFile+1))
	if err != nil {
		return nil, fmt.Errorf("hosts file %s: %w", path, err)
	}
	if len(data) > maxHostsFile {
		return nil, fmt.Errorf("hosts file %s: larger than %d bytes", path, maxHostsFile)
	}
	return parseHosts(data), nil
}

// parseHosts reads hosts(5) lines: an address, then the names it answers
// for; "#" starts a comment. Lines whose first field is not an address are
// skipped, as the C library skips them. The map is never nil.
func parseHosts(data []byte) map[string][]netip.Addr {
	names := map[string][]netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxHostsFile)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		for _, n := range fields[1:] {
			k := hostsKey(n)
			if k == "" {
				continue
			}
			if !slices.Contains(names[k], addr) {
				names[k] = append(names[k], addr)
			}
		}
	}
	for _, addrs := range names {
		slices.SortFunc(addrs, netip.Addr.Compare) // as merge orders DNS answers
	}
	return names
}

// hostsKey is the form names are compared in: lower case, without the
// final dot.
func hostsKey(name string) string { return strings.TrimRight(strings.ToLower(name), ".") }
