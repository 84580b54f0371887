package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// A check reads the same stores several times over: the system store to
// verify chains, the audit to list the roots nobody can account for, each
// build tool's store to predict its verdict, the distribution's CA package
// to tell a removed public root from a local one. On Debian those are the
// same ~150 certificates, each file reached by several names, and every
// read and parse of them costs a fresh process tens of milliseconds of page
// faults and allocation. So a process reads each file once while it is
// unchanged, and parses each certificate once, whoever asks.

// Block is one PEM block of a bundle.
type Block struct {
	Type string
	DER  []byte   // the decoded bytes; shared, never to be modified
	Sum  [32]byte // SHA-256 of DER: a certificate's identity across files
	Line int      // the line of its BEGIN marker, from 1
	// Headers says the block carried PEM headers, which x509's own pools
	// skip.
	Headers bool
}

// Cert parses a CERTIFICATE block, once a process for every file that
// holds it.
func (b Block) Cert() (*x509.Certificate, error) { return parseSum(b.Sum, b.DER) }

// BlockOf is the block of a certificate already parsed (a lab's, a
// test's); its Cert is c.
func BlockOf(c *x509.Certificate) Block {
	sum := sha256.Sum256(c.Raw)
	parsedCerts.LoadOrStore(sum, parsedAs(c))
	return Block{Type: "CERTIFICATE", DER: c.Raw, Sum: sum}
}

// parsed is one certificate's parse, shared by everyone who asks for it.
type parsed struct {
	once sync.Once
	cert *x509.Certificate
	err  error
}

// parsedAs is a parse already done.
func parsedAs(c *x509.Certificate) *parsed {
	p := &parsed{cert: c}
	p.once.Do(func() {})
	return p
}

var parsedCerts sync.Map // [32]byte -> *parsed

// Parse parses a DER certificate once a process: the result is shared, so
// callers must not modify it.
func Parse(der []byte) (*x509.Certificate, error) { return parseSum(sha256.Sum256(der), der) }

func parseSum(sum [32]byte, der []byte) (*x509.Certificate, error) {
	v, ok := parsedCerts.Load(sum)
	if !ok {
		v, _ = parsedCerts.LoadOrStore(sum, &parsed{})
	}
	p := v.(*parsed)
	p.once.Do(func() {
		defer background()()
		p.cert, p.err = x509.ParseCertificate(der)
	})
	return p.cert, p.err
}

// busy is the one slot the stores' reads and parses share.
//
// Reading and parsing the stores is tens of milliseconds of CPU that a
// check spends while its probes wait on the network. Go polls the network
// from a scheduler with nothing else to run, or from sysmon every 10 ms:
// with every P busy parsing (yielding to one another), a DNS answer or a
// ServerHello that has arrived waits up to 10 ms to be read, at every
// step of every probe. Holding the parsing to one P at a time leaves the
// others free to notice the network at once; the stores still load long
// before the first handshake needs them.
var busy = make(chan struct{}, 1)

// background waits for the slot and returns its release.
func background() (release func()) {
	busy <- struct{}{}
	return func() { <-busy }
}

// bundleEntry is a file's blocks, read or being read, with what
// identifies the file's content on disk.
type bundleEntry struct {
	info   os.FileInfo
	done   chan struct{} // closed once blocks and err are set
	blocks []Block
	err    error
	readAt time.Time // when it was read (the snapshot's clock); zero when taken from the snapshot
}

var (
	bundlesMu sync.Mutex
	bundles   = map[string]*bundleEntry{} // by identity
)

// unchanged reports whether two stats are of the same file with the same
// content, as far as a stat tells.
func unchanged(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Bundle returns the PEM blocks of the file at path, which the caller has
// just stat'ed (info, following links). A file read before, under this or
// another name, and unchanged since, is not read again, and a file being
// read is waited for (the audit, the system store and the build tools'
// stores start at once); otherwise read reads it, with the caller's bounds
// and error wording, and its blocks are remembered. A failed read is not:
// the next caller reads with its own words.
func Bundle(path string, info os.FileInfo, read func(string) ([]byte, error)) ([]Block, error) {
	id := identity(path, info)
	for range 2 {
		bundlesMu.Lock()
		e, ok := bundles[id]
		if ok && unchanged(e.info, info) {
			bundlesMu.Unlock()
			<-e.done
			if e.err == nil {
				snap.keep(id, e.info, e.blocks, e.readAt)
				return e.blocks, nil
			}
			continue // read again, once, by this caller
		}
		e = &bundleEntry{info: info, done: make(chan struct{})}
		bundles[id] = e
		bundlesMu.Unlock()
		err := func() error {
			if blocks, ok := snap.lookup(id, info); ok {
				e.blocks = blocks
				return nil
			}
			defer background()()
			e.readAt = snap.clock()
			data, err := read(path)
			if err == nil {
				e.blocks = decodeBlocks(data)
				snap.keep(id, info, e.blocks, e.readAt)
			}
			return err
		}()
		e.err = err
		if err != nil {
			bundlesMu.Lock()
			if bundles[id] == e {
				delete(bundles, id)
			}
			bundlesMu.Unlock()
		}
		close(e.done)
		return e.blocks, err
	}
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	return decodeBlocks(data), nil
}

// ReadBundle is Bundle for a regular file of bounded size, with the
// errors LoadPEM gives.
func ReadBundle(path string) ([]Block, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("PEM bundle %s: %w", path, unwrapPath(err))
	}
	return Bundle(path, info, readRegular)
}

// decodeBlocks decodes every PEM block of data. Each block's DER is its
// own allocation, as pem.Decode makes it; the file's text is not kept.
func decodeBlocks(data []byte) []Block {
	var out []Block
	var scratch []byte
	line, counted := 1, 0
	for rest := data; ; {
		start := bytes.Index(rest, []byte("-----BEGIN"))
		if start < 0 {
			return out
		}
		at := len(data) - len(rest) + start
		typ, d, after, ok := canonicalBlock(rest, start, &scratch)
		headers := false
		if !ok {
			var block *pem.Block
			if block, after = pem.Decode(rest); block == nil {
				return out
			}
			typ, d, headers = block.Type, decoded{block.Bytes, sha256.Sum256(block.Bytes)}, len(block.Headers) > 0
		}
		rest = after
		line += bytes.Count(data[counted:at], []byte("\n"))
		counted = at
		out = append(out, Block{Type: typ, DER: d.der, Sum: d.sum, Line: line, Headers: headers})
	}
}

// Blocks decodes every PEM block of data, as a bundle file's are; with a
// snapshot in use (UseSnapshot), a text decoded by an earlier check is
// taken from it.
func Blocks(data []byte) []Block {
	if !snap.active() || len(data) < minKeptText {
		return decodeBlocks(data)
	}
	id := contentID(data)
	if blocks, ok := snap.lookupText(id, len(data)); ok {
		return blocks
	}
	blocks := decodeBlocks(data)
	snap.keepText(id, len(data), blocks)
	return blocks
}

// KeepsText reports whether the snapshot keeps the blocks of a text of
// this SHA-256 and size, which KeptText then gives without the text: a
// cached tool answer (Node's roots) need not be read to be decoded.
func KeepsText(sum [32]byte, size int) bool {
	if size < minKeptText {
		return false
	}
	_, _, ok := snap.peekText(textID(sum), size)
	return ok
}

// KeptText gives the blocks the snapshot keeps for a text of this
// SHA-256 and size, as Blocks would decode the text; false where it
// keeps none.
func KeptText(sum [32]byte, size int) ([]Block, bool) {
	if size < minKeptText {
		return nil, false
	}
	return snap.lookupText(textID(sum), size)
}

// minKeptText is the smallest text Blocks keeps in the snapshot: a
// setting's inline certificate is decoded faster than looked up.
const minKeptText = 16 << 10

// canonicalBlock decodes the block whose BEGIN line starts at rest[start]
// when it is written the way every store writes them: no headers, no
// spaces, tabs or carriage returns, an END line of the same type ending
// the line. scratch is the caller's buffer for the block's text. pem.Decode spends four times as long on such a block as
// decoding its base64 takes (a Debian store is ~1 MB of PEM across the
// files a check reads); anything else is left to it (ok false), which
// then decodes this same block or skips it exactly as it always did.
func canonicalBlock(rest []byte, start int, scratch *[]byte) (typ string, d decoded, after []byte, ok bool) {
	const begin, end, dashes = "-----BEGIN ", "\n-----END ", "-----"
	if start > 0 && rest[start-1] != '\n' {
		return "", d, nil, false // pem.Decode would look past it
	}
	text := rest[start:]
	if !bytes.HasPrefix(text, []byte(begin)) {
		return "", d, nil, false
	}
	nl := bytes.IndexByte(text, '\n')
	if nl < 0 {
		return "", d, nil, false
	}
	typeLine := text[len(begin):nl]
	if !bytes.HasSuffix(typeLine, []byte(dashes)) {
		return "", d, nil, false
	}
	typeName := typeLine[:len(typeLine)-len(dashes)]
	body := text[nl+1:]
	if bytes.HasPrefix(body, []byte(end[1:])) {
		return "", d, nil, false // an empty block
	}
	e := bytes.Index(body, []byte(end))
	if e < 0 {
		return "", d, nil, false
	}
	trailer := body[e+len(end):]
	if !bytes.HasPrefix(trailer, typeName) || !bytes.HasPrefix(trailer[len(typeName):], []byte(dashes)) {
		return "", d, nil, false
	}
	after = trailer[len(typeName)+len(dashes):]
	switch {
	case len(after) == 0:
	case after[0] == '\n':
		after = after[1:]
	default:
		return "", d, nil, false
	}
	b64 := body[:e]
	if bytes.IndexByte(b64, '\r') >= 0 {
		// base64 skips it, pem.Decode too, but its lines then end
		// differently. A space, tab or header's colon fails the decode.
		return "", d, nil, false
	}
	// The text without its line breaks is the key: Node wraps its roots
	// at 72 columns, OpenSSL and Go at 64.
	key := (*scratch)[:0]
	for rest := b64; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			key = append(key, rest...)
			break
		}
		key, rest = append(key, rest[:i]...), rest[i+1:]
	}
	*scratch = key
	if d, ok = decodedBefore(key); ok {
		return string(typeName), d, after, true
	}
	der := make([]byte, base64.StdEncoding.DecodedLen(len(key)))
	n, err := base64.StdEncoding.Decode(der, key)
	if err != nil {
		return "", d, nil, false
	}
	d = decoded{der[:n:n], sha256.Sum256(der[:n])}
	remember(key, d)
	return string(typeName), d, after, true
}

// decoded is a block's DER and its SHA-256.
type decoded struct {
	der []byte
	sum [32]byte
}

// The same roots arrive as text several times a check: the system bundle,
// the store directory's files, the public roots, Node's bundled roots, a
// tool's bundle. Looking a block's base64 text up costs a hash of it;
// decoding it and hashing the DER cost ten times as much. The texts kept
// are the stores' own, which change rarely; past maxDecoded (a few
// stores' worth, ~2 MB of text) the memory starts again, so that a
// long-running daemon fed ever new bundles stays bounded.
var (
	decodedMu   sync.Mutex
	decodedText = map[string]decoded{}
)

const maxDecoded = 1024

func decodedBefore(b64 []byte) (decoded, bool) {
	decodedMu.Lock()
	defer decodedMu.Unlock()
	d, ok := decodedText[string(b64)]
	return d, ok
}

func remember(b64 []byte, d decoded) {
	decodedMu.Lock()
	defer decodedMu.Unlock()
	if len(decodedText) >= maxDecoded {
		clear(decodedText)
	}
	decodedText[string(b64)] = d
}

// CertFiles and CertDirs are where Go's crypto/x509 (and OpenSSL) look for
// the system store on Linux: the first file that reads, and every
// directory. The audit and the build tools' stores look there too.
var (
	CertFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	CertDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// systemCerts reads the system store as crypto/x509 reads it on Linux
// (systemBlocks) and parses it, through the process's shared parses.
// Certificates that x509 would skip (unparsable) are skipped. ok is false
// where the store is not files (another OS), for x509 to load it.
func systemCerts() (certs []*x509.Certificate, ok bool, err error) {
	blocks, ok, err := systemBlocks()
	for _, b := range blocks {
		if c, err := b.Cert(); err == nil {
			certs = append(certs, c)
		}
	}
	return certs, ok, err
}

// systemBlocks reads the certificates of the system store as crypto/x509
// reads it on Linux (SSL_CERT_FILE replaces the file list, SSL_CERT_DIR
// the directories; the first file that reads, then every file of every
// directory), through the process's shared reads. Blocks that x509 would
// skip for their headers are skipped; duplicates are dropped. ok is false
// where the store is not files (another OS).
func systemBlocks() (certs []Block, ok bool, err error) {
	if runtime.GOOS != "linux" {
		return nil, false, nil
	}
	seen := map[[32]byte]bool{}
	add := func(blocks []Block) {
		for _, b := range blocks {
			if b.Type != "CERTIFICATE" || b.Headers || seen[b.Sum] {
				continue
			}
			seen[b.Sum] = true
			certs = append(certs, b)
		}
	}
	files := CertFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	var firstErr error
	for _, f := range files {
		blocks, err := readAny(f)
		if err == nil {
			add(blocks)
			break
		}
		if firstErr == nil && !os.IsNotExist(err) {
			firstErr = err
		}
	}
	dirs := CertDirs
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		dirs = strings.Split(d, ":")
	}
	for _, dir := range dirs {
		files, err := ScanDir(dir)
		if err != nil {
			if firstErr == nil && !os.IsNotExist(err) {
				firstErr = err
			}
			continue
		}
		for _, f := range files {
			if f.Err != nil || !f.Info.Mode().IsRegular() {
				continue // x509 would fail on a directory and hang on a FIFO
			}
			if blocks, err := Bundle(f.Path, f.Info, os.ReadFile); err == nil {
				add(blocks)
			}
		}
	}
	if len(certs) > 0 || firstErr == nil {
		return certs, true, nil
	}
	return nil, true, firstErr
}

// readAny reads a store file as x509 does, any size, through the shared
// cache; what is not a regular file is an error.
func readAny(path string) ([]Block, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		// x509 would fail on a directory and hang on a FIFO.
		return nil, &os.PathError{Op: "read", Path: path, Err: errNotRegular}
	}
	return Bundle(path, info, os.ReadFile)
}

var errNotRegular = errors.New("not a regular file")
