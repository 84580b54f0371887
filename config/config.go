// Package config turns rules.yaml into a typed, validated Config.
//
// Every conversion happens here, once: pins become [32]byte, address ranges
// netip.Prefix, versions TLS constants, trust specs certificate pools. After
// Parse returns, nothing downstream can fail for a configuration reason. Each
// problem is reported with its file, line and field path, all at once, so a
// broken file is fixed in one pass.
package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/resolver"
	"github.com/mitmwatch/mitmwatch/sumdb"
	"github.com/mitmwatch/mitmwatch/trust"
)

// Config is a loaded rules file with every default applied.
type Config struct {
	Source string // file the config came from, or EmbeddedName

	// Toolchain says whether to also watch the hosts the local build tools
	// are configured to use (toolchain: auto).
	Toolchain bool

	PublicRoots       *x509.CertPool // stands for the public web PKI; nil while it loads (Options.StoresLater)
	SystemRoots       *x509.CertPool // what this machine trusts; nil while it loads (Options.StoresLater)
	publicLater       func() (*trust.Roots, error)
	publicErr         func(error) error // an error of the public_roots setting, with its line
	systemLater       func() (*trust.Roots, error)
	PublicRootsSource string // "mozilla" or the PEM bundle path read
	SystemRootsSource string // "system" or the PEM bundle path read

	Policy detector.Policy

	Timeout     time.Duration // per target
	Concurrency int           // targets probed at once
	Interval    time.Duration // probe.interval: how often `run` probes each target
	// Path is how much of each direct path a probe measures (probe.path):
	// the RTT split and the TTL-limited hellos.
	Path probe.PathOptions

	DNS DNS

	// Passive is what `run` captures of real build traffic; no Interface
	// means no capture.
	Passive Passive

	// Grade says when and how an interceptor found on a path is graded
	// (grade: in rules.yaml).
	Grade Grade
	// SumDB says which Go checksum database to check and how
	// (checksum_database: in rules.yaml).
	SumDB SumDB

	// RangesSource is the provider ranges snapshot "provider:NAME" was
	// resolved against: a path, or "built in".
	RangesSource string

	Targets []Target
}

// Passive says where `run` watches real build traffic (passive: in
// rules.yaml): the TLS handshakes of connections to Ports on Interface,
// judged together once per Window.
type Passive struct {
	Interface string
	Ports     []uint16 // server ports; empty means 443
	Window    time.Duration
}

// DefaultPassiveWindow is how long passive results gather before they
// are judged and exported: a scrape interval's multiple, long enough for
// a build's worth of connections.
const DefaultPassiveWindow = time.Minute

// DefaultRangesFile is where `mitmwatch ranges update` writes the snapshot
// for the service. The mitmwatch command passes it as Options.RangesFile, so
// a config without ranges_file reads it when it exists.
const DefaultRangesFile = "/var/lib/mitmwatch/ranges.json"

// DNS says which resolvers to compare. The system resolvers are read from
// ResolvConf at probe time, so a namespace's own resolv.conf is honoured.
type DNS struct {
	ResolvConf string            // dns.resolv_conf, default /etc/resolv.conf
	Reference  []resolver.Server // dns.reference_resolvers
	Canary     bool              // dns.canary: ask for a name that cannot exist
}

// DefaultReferenceResolvers are well-known public resolvers reached over
// encrypted transports where they offer one, so that a lying local resolver
// cannot answer for them.
var DefaultReferenceResolvers = []string{"tls://1.1.1.1:853", "udp://9.9.9.9:53", "https://dns.google/dns-query"}

// DefaultResolvConf is where the system's resolvers are listed.
const DefaultResolvConf = "/etc/resolv.conf"

// Target is one host to probe and what it should look like.
type Target struct {
	Host    string // lower case DNS name, or a canonical IP address
	Port    int
	Address string // "ip:port" to dial instead of resolving Host; empty to resolve
	// Source says where the target came from, so a report can point at the
	// line to edit: "rules.yaml:12", or a toolchain source like "go env GOPROXY".
	Source string
	Expect detector.Expectation
	// Interval overrides probe.interval for this target in `run`; zero
	// means the global interval.
	Interval time.Duration
	// Protocol is what the target speaks: TLS (the zero value), SSH, or
	// the Go checksum database. Fallback is, for SSH, the same service at
	// another endpoint ("ssh.github.com:443") that tells a blocked port
	// from a service that is down. SumDB is, for a checksum database,
	// which one and the route the go command takes to it.
	Protocol detector.Protocol
	Fallback string
	SumDB    *sumdb.Database
}

// Key identifies a target: two targets with the same key are the same
// probe. It is "host:port" for TLS, "ssh://host:port" for SSH and
// "gosumdb://name" for a checksum database, as detector.Observation.Key
// names what was observed.
func (t Target) Key() string {
	return detector.Observation{Host: t.Host, Port: t.Port, Protocol: t.Protocol}.Key()
}

// Defaults and limits of the probe section.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultInterval    = 5 * time.Minute
	MinInterval        = time.Second
	MaxInterval        = 24 * time.Hour
	MaxTimeout         = 5 * time.Minute
	DefaultConcurrency = 16
	MaxConcurrency     = 256
	// DefaultPathSamples round trips (the handshake's and two more) let the
	// minimum filter out one delayed sample; DefaultMaxHops covers the
	// hops inside a company's network, where its middleboxes sit.
	DefaultPathSamples = 3
	MaxPathSamples     = 10
	DefaultMaxHops     = 8
	MaxHops            = 32
	DefaultPort        = 443
	DefaultSSHPort     = 22
)

// Options are what Parse and Load read besides the rules file and the
// files it names. The zero value reads nothing else.
type Options struct {
	// RangesFile is the provider ranges snapshot to use when the rules file
	// has no ranges_file, if it exists (a relative path is relative to the
	// working directory). Empty, or absent on disk: the snapshot built into
	// mitmwatch. The mitmwatch command passes DefaultRangesFile.
	RangesFile string
	// StoresLater reads the public roots and the machine's own store
	// ("system") in the background: PublicRoots and SystemRoots stay nil,
	// PublicStore and SystemStore wait for them, so `check` starts its
	// round trips before any store is read, and needs the roots only once
	// a chain arrives. They are indexed, not parsed (trust.Roots): a root
	// is parsed when a chain names it. A public_roots bundle that fails to
	// load is then StoreErr's, with its line, and so is a certificate of
	// it that has a certificate's shape but that x509 rejects, once a
	// chain names it (a whole-store load rejects the bundle at once). A
	// system_roots bundle is read at once, as before.
	StoresLater bool
}

// PublicStore returns the public roots, waiting for them when they are
// still loading (Options.StoresLater), when they are indexed and parsed
// only as chains name them. A bundle that failed to load is empty here,
// and StoreErr says why.
func (c *Config) PublicStore() *trust.Roots {
	if c.publicLater != nil {
		r, _ := c.publicLater()
		return r
	}
	return trust.PoolRoots(c.PublicRoots)
}

// SystemStore returns the system store, waiting for it when it is still
// loading (Options.StoresLater). An error loading it later leaves it
// empty: every chain then fails against it, which the report shows.
func (c *Config) SystemStore() *trust.Roots {
	if c.systemLater != nil {
		r, _ := c.systemLater()
		return r
	}
	return trust.PoolRoots(c.SystemRoots)
}

// StoreErr waits for the public roots (Options.StoresLater) and returns
// the error that loading them from the configured bundle met, as Parse
// would have returned it (file, line, field): the bundle's own, or that
// of a root of it x509 rejected when a chain named it (trust.Roots.Err),
// so it is asked for once the chains are verified. nil when they loaded.
func (c *Config) StoreErr() error {
	if c.publicLater == nil {
		return nil
	}
	r, err := c.publicLater()
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return c.publicErr(err)
	}
	return nil
}

// Load reads and parses the rules file at path.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading config: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse decodes a rules file. name is used in error messages and target
// sources, and relative trust paths are resolved against its directory. An
// empty file is valid: all defaults, no targets. The error, if any, joins one
// *Error per problem, sorted by line.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	d := newDecoder(name, opts)
	cfg := d.decode(data)
	if len(d.errs) > 0 {
		// A file with errors lists them all, the later store's too.
		var e *Error
		if errors.As(cfg.StoreErr(), &e) {
			d.errs = append(d.errs, e)
		}
		return nil, d.err()
	}
	return cfg, nil
}

// Error is one problem in a rules file.
type Error struct {
	File string
	Line int    // 1-based; 0 when the problem has no line
	Path string // field path such as targets[2].expect.alpn; empty for the document
	Msg  string
	Err  error // underlying cause, if any (a missing PEM bundle, say)
}

// Error renders the problem as file:line: path: message, the form editors
// and CI logs link to.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Path != "" {
		b.WriteString(": " + e.Path)
	}
	if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the cause, so errors.Is(err, fs.ErrNotExist) works.
func (e *Error) Unwrap() error { return e.Err }

// maxErrors keeps the report of a badly broken (or hostile) file readable.
const maxErrors = 50

// err joins the collected errors, sorted by line.
func (d *decoder) err() error {
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	errs := make([]error, 0, min(len(d.errs), maxErrors)+1)
	for i, e := range d.errs {
		if i == maxErrors {
			errs = append(errs, &Error{File: d.file, Msg: fmt.Sprintf("%d more errors not shown", len(d.errs)-maxErrors)})
			break
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// ExpectFor looks up what the targets expect of a host another source
// shows (a capture's SNI and port): the target on the same port first,
// else one naming the host on any port, since a capture may show a host on
// a lab or mirror port. ok is false when no target names the host.
func ExpectFor(targets []Target) func(host string, port int) (exp detector.Expectation, source string, ok bool) {
	return func(host string, port int) (detector.Expectation, string, bool) {
		var byHost *Target
		for i, t := range targets {
			if t.Host != host {
				continue
			}
			if t.Port == port {
				return t.Expect, t.Source, true
			}
			if byHost == nil {
				byHost = &targets[i]
			}
		}
		if byHost != nil {
			return byHost.Expect, byHost.Source, true
		}
		return detector.Expectation{}, "", false
	}
}
