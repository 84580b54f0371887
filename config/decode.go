package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/mitmwatch/mitmwatch/probe"
	"github.com/mitmwatch/mitmwatch/ranges"
	"github.com/mitmwatch/mitmwatch/resolver"
	"github.com/mitmwatch/mitmwatch/trust"
)

// maxNodes bounds the values visited once aliases are expanded, so a small
// file of nested aliases cannot make Parse run for minutes.
const maxNodes = 1 << 20

// decoder walks the YAML node tree, converting values into cfg and
// collecting every problem with its line and field path.
type decoder struct {
	file      string
	dir       string // relative trust paths are resolved against it
	errs      []*Error
	budget    int
	exhausted bool

	defaultRanges string          // Options.RangesFile
	storesLater   bool            // Options.StoresLater
	ranges        ranges.Snapshot // what "provider:NAME" resolves against
	rangesSource  string

	cfg            *Config
	public, system spec // the trust stores, built once the file is decoded
}

// spec is a trust store setting and where it was written.
type spec struct {
	value string
	line  int
	path  string
}

func newDecoder(name string, opts Options) *decoder {
	return &decoder{file: name, dir: filepath.Dir(name), budget: maxNodes, defaultRanges: opts.RangesFile, storesLater: opts.StoresLater}
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	if d.exhausted {
		return // everything after the budget ran out is noise
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(data []byte) *Config {
	d.cfg = &Config{
		Source:      d.file,
		Toolchain:   true,
		Timeout:     DefaultTimeout,
		Concurrency: DefaultConcurrency,
		Interval:    DefaultInterval,
		Path:        probe.PathOptions{Samples: DefaultPathSamples, MaxHops: DefaultMaxHops},
		DNS:         DNS{ResolvConf: DefaultResolvConf, Reference: d.defaultResolvers(DefaultReferenceResolvers), Canary: true},
		Passive:     Passive{Window: DefaultPassiveWindow},
		Grade:       defaultGrade(),
		SumDB:       SumDB{MaxAge: DefaultSumDBMaxAge},
	}
	d.public = spec{value: trust.Mozilla, path: "trust.public_roots"}
	d.system = spec{value: trust.System, path: "trust.system_roots"}
	root := d.parseYAML(data)
	d.loadRanges(root)
	d.cfg.RangesSource = d.rangesSource
	if root != nil {
		d.document(root)
	}
	if d.storesLater {
		d.cfg.publicLater, d.cfg.PublicRootsSource = d.poolLater(d.public, trust.Mozilla, trust.PublicIndex)
		d.cfg.publicErr = d.settingErr(d.public)
	} else {
		d.cfg.PublicRoots, d.cfg.PublicRootsSource = d.pool(d.public, trust.Mozilla, trust.PublicRoots)
	}
	if d.storesLater && d.system.value == trust.System {
		d.cfg.systemLater, d.cfg.SystemRootsSource = trust.SystemIndexLater(trust.System), trust.System
	} else {
		d.cfg.SystemRoots, d.cfg.SystemRootsSource = d.pool(d.system, trust.System, trust.SystemRoots)
	}
	return d.cfg
}

// defaultResolvers parses the built-in reference resolvers. A bad one is a
// bug in mitmwatch, reported as a problem of every config rather than as a
// crash; TestGood and TestDefaultRules keep it from shipping.
func (d *decoder) defaultResolvers(specs []string) []resolver.Server {
	var out []resolver.Server
	for _, s := range specs {
		srv, problem := parseResolver(s)
		if problem != "" {
			d.errorf(0, "dns.reference_resolvers", "built-in default: %s", problem)
			continue
		}
		out = append(out, srv)
	}
	return out
}

// loadRanges reads the provider ranges snapshot before anything else, so
// that "provider:NAME" resolves wherever ranges_file stands in the file:
// ranges_file if set, else Options.RangesFile if it exists, else the
// snapshot built into mitmwatch.
func (d *decoder) loadRanges(root *yaml.Node) {
	d.ranges, d.rangesSource = ranges.Embedded(), "built in"
	path, line := "", 0
	if root != nil && root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k, v := root.Content[i], root.Content[i+1]; k.Value == "ranges_file" {
				if v.Kind != yaml.ScalarNode || v.Value == "" {
					d.errorf(v.Line, "ranges_file", "want a path to a snapshot written by mitmwatch ranges update")
					return
				}
				path, line = v.Value, v.Line
			}
		}
	}
	switch {
	case path != "" && !filepath.IsAbs(path):
		path = filepath.Join(d.dir, path)
	case path == "":
		if d.defaultRanges == "" {
			return
		}
		if _, err := os.Stat(d.defaultRanges); err != nil {
			return
		}
		path = d.defaultRanges
	}
	snap, err := ranges.Load(path)
	if err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: "ranges_file", Err: err})
		return
	}
	d.ranges, d.rangesSource = snap, path
}

// yamlLine matches the line yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseYAML returns the root node of the single document, or nil for an
// empty file or a syntax error (which it records).
func (d *decoder) parseYAML(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(err)
		return nil
	default:
		d.errorf(extra.Line, "", "only one YAML document is allowed")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	d.errorf(line, "", "%s", strings.TrimPrefix(msg, "yaml: "))
}

// resolve follows aliases and charges the visit to the budget. Once the
// budget is spent it returns an empty value, which every caller ignores.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 64; i++ {
		n = n.Alias
	}
	if d.budget--; d.budget < 0 {
		if !d.exhausted {
			d.errorf(n.Line, "", "too many values once aliases are expanded (more than %d)", maxNodes)
			d.exhausted = true
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "an empty value"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an unsupported node"
}

func (d *decoder) wrongKind(n *yaml.Node, path, want string) {
	d.errorf(n.Line, path, "want %s, got %s", want, describe(n))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// field decodes the non-empty value of one known key; path names it.
type field func(v *yaml.Node, path string)

// fields decodes a mapping strictly: unknown and repeated keys are errors,
// an empty value counts as absent. It returns the keys present, or nil when
// n is not a mapping.
func (d *decoder) fields(n *yaml.Node, path string, known map[string]field) map[string]bool {
	if n.Kind != yaml.MappingNode {
		d.wrongKind(n, path, "a mapping")
		return nil
	}
	present := map[string]bool{}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "field names must be plain strings, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, p, "duplicate field (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		decode, ok := known[k.Value]
		switch {
		case k.ShortTag() == "!!merge":
			d.errorf(k.Line, p, "merge keys are not supported; use an alias for the whole value")
			continue
		case !ok:
			d.errorf(k.Line, p, "unknown field")
			continue
		}
		v := d.resolve(n.Content[i+1])
		if isNull(v) {
			continue
		}
		present[k.Value] = true
		decode(v, p)
	}
	return present
}

// list returns the items of a sequence, unresolved so that callers can
// report where an alias was used.
func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		d.wrongKind(n, path, "a list")
		return nil
	}
	return n.Content
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.wrongKind(n, path, "a single value")
		return "", false
	}
	return n.Value, true
}

// each decodes every item of a list of single values with convert, which
// returns a problem description or "".
func each[T any](d *decoder, n *yaml.Node, path string, convert func(string) (T, string)) []T {
	var out []T
	for i, item := range d.list(n, path) {
		item = d.resolve(item)
		s, ok := d.scalar(item, index(path, i))
		if !ok {
			continue
		}
		v, problem := convert(s)
		if problem != "" {
			d.errorf(item.Line, index(path, i), "%s", problem)
			continue
		}
		out = append(out, v)
	}
	return out
}

// one decodes a single value with convert, as each does for lists.
func one[T any](d *decoder, n *yaml.Node, path string, convert func(string) (T, string)) (T, bool) {
	var zero T
	s, ok := d.scalar(n, path)
	if !ok {
		return zero, false
	}
	v, problem := convert(s)
	if problem != "" {
		d.errorf(n.Line, path, "%s", problem)
		return zero, false
	}
	return v, true
}

// value decodes a single value with convert into dst, which keeps its
// default when the value is invalid.
func value[T any](d *decoder, convert func(string) (T, string), dst *T) field {
	return func(v *yaml.Node, p string) {
		if x, ok := one(d, v, p, convert); ok {
			*dst = x
		}
	}
}

// values decodes a list of single values with convert into dst, keeping
// the valid ones.
func values[T any](d *decoder, convert func(string) (T, string), dst *[]T) field {
	return func(v *yaml.Node, p string) { *dst = each(d, v, p, convert) }
}

// poolLater is pool in the background: the returned function waits for
// the store, and gives a failure as the *Error pool would have recorded
// (an empty pool with it).
func (d *decoder) poolLater(s spec, keyword string, load func(string) (*trust.Roots, error)) (func() (*trust.Roots, error), string) {
	src, wrap := d.source(s, keyword), d.settingErr(s)
	type loaded struct {
		pool *trust.Roots
		err  error
	}
	done := make(chan loaded, 1)
	go func() {
		p, err := load(src)
		done <- loaded{p, err}
	}()
	return sync.OnceValues(func() (*trust.Roots, error) {
		l := <-done
		if l.err != nil {
			return &trust.Roots{}, wrap(l.err)
		}
		return l.pool, nil
	}), src
}

// settingErr gives an error met later (a store loading in the
// background) as the *Error of the setting s, with its file and line.
func (d *decoder) settingErr(s spec) func(error) error {
	file := d.file
	return func(err error) error { return &Error{File: file, Line: s.line, Path: s.path, Err: err} }
}

// source is where a store's setting points: a keyword, or a path
// relative to the config file.
func (d *decoder) source(s spec, keyword string) string {
	if s.value != keyword && !filepath.IsAbs(s.value) {
		return filepath.Join(d.dir, s.value)
	}
	return s.value
}

// pool builds a trust store from its setting; paths are relative to the
// config file. The error keeps its cause for errors.Is.
func (d *decoder) pool(s spec, keyword string, load func(string) (*x509.CertPool, error)) (*x509.CertPool, string) {
	src := d.source(s, keyword)
	p, err := load(src)
	if err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Line: s.line, Path: s.path, Err: err})
	}
	return p, src
}
