package audit

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/fingerprints"
	"github.com/mitmwatch/mitmwatch/trust"
)

// maxBundleSize bounds a CA bundle read; the largest OS bundles are under
// 1 MiB.
const maxBundleSize = 16 << 20

// bundleRef is a CA bundle (or directory) a setting points a tool at.
type bundleRef struct {
	path          string
	dir           bool
	tool, setting string
	source        string
}

// caSetting checks a setting that names a CA bundle or directory: a
// missing one is a warning; an existing one is read for roots later.
func (a *auditor) caSetting(p *part, tool, setting, path, source string, dir bool) {
	problem := pathProblem(path, dir)
	if problem == "" {
		p.bundles = append(p.bundles, bundleRef{path: path, dir: dir, tool: tool, setting: setting, source: source})
		return
	}
	p.add(Finding{Tool: tool, Setting: setting, Value: path, Source: source, Severity: detector.Warning,
		Why: fmt.Sprintf("the CA %s it names %s: %s cannot load it, so its TLS connections fail or fall back to other roots, and the usual next step is switching verification off", map[bool]string{false: "bundle", true: "directory"}[dir], problem, tool),
		Fix: "Point it at a bundle that exists and holds what your network needs (the public roots plus your corporate CA), or unset it."})
}

// systemStoreChecks lists the roots of the system store (SSL_CERT_FILE and
// SSL_CERT_DIR when set, as Go and OpenSSL honour them) that the public
// set lacks.
func (a *auditor) systemStoreChecks(context.Context) *part {
	p := &part{}
	s := a.newRootScan(p)
	files, fileSetting := a.opts.SystemCertFiles, "system store"
	if files == nil {
		files = make([]string, len(trust.CertFiles))
		for i, f := range trust.CertFiles {
			files[i] = a.sys(f)
		}
	}
	if runtime.GOOS != "linux" && a.opts.SystemCertFiles == nil {
		files = nil // the store is not a file elsewhere
	}
	if v := a.env.get("SSL_CERT_FILE"); v != "" {
		a.caSetting(p, "env", "SSL_CERT_FILE", v, fromEnv, false)
		files, fileSetting = []string{v}, "SSL_CERT_FILE"
	}
	var where []string
	for _, f := range files {
		if isFile(f) {
			s.file(f, "trust", fileSetting)
			where = append(where, f)
			break
		}
	}
	dirs, dirSetting := a.opts.SystemCertDirs, "system store"
	if dirs == nil && runtime.GOOS == "linux" {
		for _, d := range trust.CertDirs {
			dirs = append(dirs, a.sys(d))
		}
	}
	if v := a.env.get("SSL_CERT_DIR"); v != "" {
		dirs, dirSetting = nil, "SSL_CERT_DIR"
		for _, d := range filepath.SplitList(v) {
			a.caSetting(p, "env", "SSL_CERT_DIR", d, fromEnv, true)
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if s.dir(d, "trust", dirSetting) {
			where = append(where, d)
		}
	}
	s.summarise(strings.Join(where, ", "))
	p.bundles = nil // those were warnings' bookkeeping only: read above
	return p
}

// bundleChecks reads the bundles settings point tools at, reporting roots
// the system store check has not already reported.
func (a *auditor) bundleChecks(parts []*part) *part {
	p := &part{}
	s := a.newRootScan(p)
	for _, q := range parts {
		for _, k := range q.roots {
			s.reported[k] = true
		}
		s.scanned = append(s.scanned, q.scanned...)
	}
	for _, q := range parts {
		for _, b := range q.bundles {
			if b.dir {
				s.dir(b.path, b.tool, b.setting)
			} else {
				s.file(b.path, b.tool, b.setting)
			}
		}
	}
	s.summarise("CA bundles named by settings")
	return p
}

// rootScan reads PEM bundles, reporting each non-public certificate once.
type rootScan struct {
	p        *part
	reported map[detector.SPKI]bool
	scanned  []os.FileInfo     // files read: a file reached by several links is read once
	seen     map[[32]byte]bool // certificates parsed, by DER hash
	distro   func() map[[32]byte]bool
	// removed counts the distribution roots the public set dropped;
	// firstRemoved is the first one's subject, the finding's example
	// (rendering every subject would cost a check more than the count).
	removed      int
	firstRemoved string
}

func (a *auditor) newRootScan(p *part) *rootScan {
	return &rootScan{p: p, reported: map[detector.SPKI]bool{}, seen: map[[32]byte]bool{},
		distro: a.distro}
}

// Where distributions keep the Mozilla roots their CA package ships,
// apart from what the administrator added (/usr/local/share/ca-certificates,
// /etc/pki/ca-trust/source/anchors): Debian, Ubuntu and Alpine as PEM
// files, Fedora, RHEL and Arch as p11-kit files whose certificates are PEM
// blocks.
var distroRootPaths = []string{
	"/usr/share/ca-certificates/mozilla",
	"/usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit",
	"/usr/share/ca-certificates/trust-source/mozilla.trust.p11-kit",
}

// distroRoots returns the SHA-256 of the roots the distribution's CA
// package ships (of their DER: a shipped root in the store is the same
// certificate, so none of them needs parsing). A system root the
// compiled-in Mozilla set lacks but the distribution ships is a public
// root Mozilla has since removed (the package is older than the binary),
// not a locally installed one. The package's directory is read as a set
// kept while the directory is unchanged (trust.DirBlocks): the package
// manager replaces its files, never writes them in place.
func (a *auditor) distroRoots() map[[32]byte]bool {
	out := map[[32]byte]bool{}
	for _, p := range distroRootPaths {
		p = a.sys(p)
		blocks, ok := trust.DirBlocks(p)
		if !ok {
			blocks, _ = readBlocks(p) // a p11-kit file
		}
		for _, b := range blocks {
			if b.Type == "CERTIFICATE" {
				out[b.Sum] = true
			}
		}
	}
	return out
}

// summarise reports, in one finding, the distribution roots that the
// public set no longer holds.
func (s *rootScan) summarise(source string) {
	if s.removed == 0 {
		return
	}
	s.p.add(Finding{Tool: "trust", Setting: "system store", Value: plural(s.removed, "root"), Source: source, Severity: detector.Info,
		Why: fmt.Sprintf("the distribution's CA package still ships %d public roots that are not in the newer Mozilla set compiled into mitmwatch (removed or distrusted since; e.g. %s): public CAs, but trusted wider than browsers now trust them", s.removed, s.firstRemoved),
		Fix: "Update the ca-certificates package."})
	s.removed, s.firstRemoved = 0, ""
}

// dir reads every file of a certificate directory (c_rehash links and the
// files they point at are the same certificates, read once), through the
// process's one scan of it (trust.ScanDir). It reports whether the
// directory could be read.
func (s *rootScan) dir(dir, tool, setting string) bool {
	files, err := trust.ScanDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			s.p.warn(fmt.Sprintf("%s: %v", dir, unwrapPath(err)))
		}
		return false
	}
	for _, f := range files {
		s.statted(f.Path, f.Info, f.Err, tool, setting)
	}
	return true
}

// file reads one PEM bundle.
func (s *rootScan) file(path, tool, setting string) {
	fi, err := os.Stat(path)
	s.statted(path, fi, err, tool, setting)
}

// statted is file for a path just stat'ed (following links). A store
// directory holds hundreds of links to the same files (c_rehash's and the
// .pem names): the stat, which the kernel resolves, tells a file already
// read, and the links are resolved by name only for a finding, which names
// the file itself.
func (s *rootScan) statted(path string, fi os.FileInfo, err error, tool, setting string) {
	if err == nil {
		if fi.IsDir() {
			return // a subdirectory of a certificate directory
		}
		if slices.ContainsFunc(s.scanned, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
			return
		}
		s.scanned = append(s.scanned, fi)
		s.p.scanned = append(s.p.scanned, fi)
	}
	// Name the file itself, not a link to it: that is where a locally
	// added root is to be removed (/usr/local/share/ca-certificates/...).
	named := sync.OnceValue(func() string {
		clean := filepath.Clean(path)
		if real, err := filepath.EvalSymlinks(clean); err == nil && !strings.HasPrefix(filepath.Base(real), ".") {
			return real
		}
		return path
	})
	blocks, err := readStatted(path, fi, err)
	if err != nil {
		s.p.warn(err.Error())
		return
	}
	// The Mozilla roots compiled into the binary, never the OS's: an
	// inspection root pushed into the OS store must not make itself look
	// public.
	public := trust.PublicKeys()
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" || s.seen[b.Sum] {
			continue
		}
		s.seen[b.Sum] = true
		// The key is read from the DER: most roots are public, and only
		// the others are parsed, to be named.
		n, ok := trust.RawNames(b.DER)
		if !ok {
			continue // x509 cannot parse it, and Go's own pool skips it
		}
		pin := detector.SPKI(sha256.Sum256(n.SPKI))
		if public[pin] || s.reported[pin] {
			continue
		}
		// Parsed only to be named: every root the public set lacks but
		// the distribution ships (dozens) is counted, and the first
		// named.
		distro := s.distro()[b.Sum]
		var c *x509.Certificate
		if !distro || s.removed == 0 {
			var err error
			if c, err = b.Cert(); err != nil {
				continue // Go's own pool skips these too
			}
		}
		s.reported[pin] = true
		s.p.roots = append(s.p.roots, pin)
		if distro {
			if s.removed++; s.removed == 1 {
				s.firstRemoved = c.Subject.String()
			}
			continue
		}
		s.p.add(rootFinding(c, pin, tool, setting, at(named(), b.Line)))
	}
}

// readBlocks reads the PEM blocks of a bundle through the process's shared
// reads (trust.Bundle: the check's own store, the build tools' and the
// audit's are the same files), with readFile's bounds and wording. A file
// that does not exist has none.
func readBlocks(path string) ([]trust.Block, error) {
	fi, err := os.Stat(path)
	return readStatted(path, fi, err)
}

// readStatted is readBlocks for a path the caller has just stat'ed: a
// store directory is hundreds of links, each stat a walk of them.
func readStatted(path string, fi os.FileInfo, err error) ([]trust.Block, error) {
	if err != nil {
		_, _, err = readFile(path, maxBundleSize) // its words for a missing or dangling file
		return nil, err
	}
	return trust.Bundle(path, fi, func(path string) ([]byte, error) {
		data, _, err := readFile(path, maxBundleSize)
		return data, err
	})
}

// rootFinding describes a trusted certificate outside the public set.
func rootFinding(c *x509.Certificate, pin detector.SPKI, tool, setting, source string) Finding {
	root := &Root{Subject: c.Subject.String(), SPKI: pin.String()}
	f := Finding{Tool: tool, Setting: setting, Value: root.Subject, Source: source, Severity: detector.Info, Root: root,
		Why: "a CA outside the public (Mozilla) set is trusted here: it can sign a certificate for any host and this machine's tools will accept it. A corporate CA is expected on a managed machine; one nobody can account for may be an interception root",
		Fix: "If it is your organisation's inspection or internal CA, approve its pin (allow.inspection_ca_spki_sha256 in rules.yaml) so mitmwatch reports inspection, not attack; if nobody can account for it, remove it from the store."}
	if m, ok := fingerprints.Identify([]*x509.Certificate{nil, c}); ok {
		root.Product = m.Product
		f.Severity = detector.Warning
		f.Why = fmt.Sprintf("a CA of %s, a TLS interception product (%s %q), is trusted here: it can sign a certificate for any host and this machine's tools will accept it; this is the root interception relies on", m.Product, m.Field, m.Value)
	}
	return f
}

// plural renders "1 root", "2 roots".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
