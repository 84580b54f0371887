package trust

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/mitmwatch/mitmwatch/detector"
)

// A check meets a few hundred roots and uses a handful: its chains name
// three or four issuers. Parsing every root and adding it to a pool costs
// a fresh process 7-8 ms of CPU, more than a verified handshake, so Roots
// keeps the roots as DER indexed by subject and parses only those a chain
// names.
//
// crypto/x509 looks a certificate's parents up in a pool by the issuer
// name alone (CertPool.findPotentialParents), and tries them in the order
// they were added; a root can only be a chain's anchor, never extended.
// So the roots whose subject is the issuer of a presented certificate,
// or the leaf's own subject (a pool holding the leaf itself), added in
// the store's order, verify a chain exactly as the whole store would:
// the same chains, the same error.

// Roots is a store of trust anchors, parsed when a chain names them.
// The zero value and nil trust nothing. It is safe for concurrent use.
type Roots struct {
	bySubject map[string][]anchor
	list      []anchor       // in the store's order
	whole     *x509.CertPool // a store given whole (another OS's): used as it is
	all       func() *x509.CertPool
	// bundle is the file a strict store was read from (a public_roots
	// bundle); bad is the first of its roots that x509 rejected when a
	// chain named it (Err).
	bundle string
	badMu  sync.Mutex
	bad    error
}

// anchor is one root of a Roots.
type anchor struct {
	der        []byte
	sum        [32]byte
	constraint func([]*x509.Certificate) error
	n          int // its number in its bundle, from 1
}

// addTo adds the anchor to pool, parsed (cert), with its constraint; a
// root pool already holds is kept once.
func (r *Roots) addTo(pool *x509.CertPool, a anchor) {
	c, ok := r.cert(a)
	switch {
	case !ok:
	case a.constraint != nil:
		pool.AddCertWithConstraint(c, a.constraint)
	default:
		pool.AddCert(c)
	}
}

// cert parses an anchor once a process (Parse). A root x509 cannot parse
// is skipped, as x509's own pools skip it; in a strict store it is also
// Err's.
func (r *Roots) cert(a anchor) (*x509.Certificate, bool) {
	c, err := parseSum(a.sum, a.der)
	if err != nil && r.bundle != "" {
		r.badMu.Lock()
		if r.bad == nil {
			r.bad = fmt.Errorf("PEM bundle %s: certificate %d: %w", r.bundle, a.n, err)
		}
		r.badMu.Unlock()
	}
	return c, err == nil
}

// Err is the error of the first root of a strict store (a public_roots
// bundle, PublicIndex) that x509 rejected once a chain named it: the
// error LoadCerts would have given the whole bundle, found where it
// matters. nil for the other stores, whose bad roots x509's own pools
// skip.
func (r *Roots) Err() error {
	if r == nil {
		return nil
	}
	r.badMu.Lock()
	defer r.badMu.Unlock()
	return r.bad
}

// newRoots indexes anchors. Duplicates (by DER) are dropped, as a pool
// drops them; one whose names cannot be read is dropped, as x509 would
// fail to parse it.
func newRoots(anchors []anchor) *Roots {
	r := &Roots{bySubject: make(map[string][]anchor, len(anchors))}
	seen := make(map[[32]byte]bool, len(anchors))
	for _, a := range anchors {
		n, ok := RawNames(a.der)
		if !ok || seen[a.sum] {
			continue
		}
		seen[a.sum] = true
		r.bySubject[string(n.Subject)] = append(r.bySubject[string(n.Subject)], a)
		r.list = append(r.list, a)
	}
	r.all = sync.OnceValue(r.pool)
	return r
}

// NewRoots is a store of certificates already parsed (a lab's, a test's).
func NewRoots(certs ...*x509.Certificate) *Roots {
	blocks := make([]Block, len(certs))
	for i, c := range certs {
		blocks[i] = BlockOf(c)
	}
	return indexBlocks(blocks)
}

// indexBlocks indexes the certificate blocks of a store, numbered in it
// from 1.
func indexBlocks(blocks []Block) *Roots {
	anchors := make([]anchor, len(blocks))
	for i, b := range blocks {
		anchors[i] = anchor{der: b.DER, sum: b.Sum, n: i + 1}
	}
	return newRoots(anchors)
}

// PoolRoots is a store given as a pool, used whole for every chain: the
// system store where it is not files (another OS), or one a caller has
// built.
func PoolRoots(pool *x509.CertPool) *Roots {
	if pool == nil {
		pool = x509.NewCertPool() // a nil pool would be the system's to x509
	}
	r := &Roots{whole: pool}
	r.all = func() *x509.CertPool { return pool }
	return r
}

// Len is the number of roots; a store given as a pool counts none.
func (r *Roots) Len() int {
	if r == nil {
		return 0
	}
	return len(r.list)
}

// For returns a pool that verifies chain (leaf first) as the whole store
// does, holding only the roots chain names. Each call builds a new pool.
func (r *Roots) For(chain []*x509.Certificate) *x509.CertPool {
	if r == nil {
		return x509.NewCertPool()
	}
	if r.whole != nil {
		return r.whole
	}
	pool := x509.NewCertPool()
	if len(chain) == 0 || len(r.bySubject) == 0 {
		return pool
	}
	add := func(name []byte) {
		for _, a := range r.bySubject[string(name)] {
			r.addTo(pool, a)
		}
	}
	add(chain[0].RawSubject)
	for _, c := range chain {
		add(c.RawIssuer)
	}
	return pool
}

// Pool returns every root in one pool, parsed once; callers must not
// modify it. It is for a client that needs its roots before any chain
// arrives (an HTTP transport through a proxy).
func (r *Roots) Pool() *x509.CertPool {
	if r == nil || r.all == nil {
		return x509.NewCertPool()
	}
	return r.all()
}

// pool is every root of the index in one pool, in the store's order.
func (r *Roots) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, a := range r.list {
		r.addTo(pool, a)
	}
	return pool
}

// mozillaIndex indexes the compiled-in Mozilla roots once a process,
// without parsing them.
var mozillaIndex = sync.OnceValues(func() (*Roots, error) {
	var anchors []anchor
	for root := range bundle.Roots() {
		anchors = append(anchors, anchor{der: root.Certificate, sum: sha256.Sum256(root.Certificate), constraint: root.Constraint})
	}
	if len(anchors) == 0 {
		return nil, errors.New("trust: the Mozilla bundle is empty")
	}
	return newRoots(anchors), nil
})

// PublicKeys is the SHA-256 of the key of every compiled-in Mozilla root
// (a pin, as detector.SPKIOf gives it), read from the DER once a
// process: the audit tells a public root from a local one by its key
// without parsing either. Never modified.
var PublicKeys = sync.OnceValue(func() map[detector.SPKI]bool {
	out := map[detector.SPKI]bool{}
	// From the bundle, not mozillaIndex: a check whose public_roots is a
	// bundle file builds no index of these.
	for root := range bundle.Roots() {
		if n, ok := RawNames(root.Certificate); ok {
			out[sha256.Sum256(n.SPKI)] = true
		}
	}
	return out
})

// PublicIndex is PublicRoots as Roots: the compiled-in Mozilla roots for
// "mozilla", else the bundle at spec. A bundle's certificates are checked
// for the shape of a certificate up to its key, not parsed: one x509
// rejects when a chain names it is skipped, and is Err's.
func PublicIndex(spec string) (*Roots, error) {
	if spec == Mozilla {
		return mozillaIndex()
	}
	return bundleIndex(spec)
}

// bundleIndex indexes the certificates of the PEM bundle at path, with
// LoadBlocks' errors.
func bundleIndex(path string) (*Roots, error) {
	blocks, err := LoadBlocks(path)
	if err != nil {
		return nil, err
	}
	r := indexBlocks(blocks)
	r.bundle = path
	return r, nil
}

// LoadBlocks is LoadCerts without the parse, for a caller that needs the
// certificates only as a chain names them: the CERTIFICATE blocks of the
// bundle at path, each checked for the shape of a certificate up to its
// key (RawNames). A bundle with none, or with one of another shape, is an
// error, as in LoadCerts; one that x509 still rejects is skipped when it
// is parsed, as x509's own pools skip it.
func LoadBlocks(path string) ([]Block, error) {
	blocks, err := ReadBundle(path)
	if err != nil {
		return nil, err
	}
	var out []Block
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, ok := RawNames(b.DER); !ok {
			return nil, fmt.Errorf("PEM bundle %s: certificate %d: x509: malformed certificate", path, len(out)+1)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("PEM bundle %s: no certificates found", path)
	}
	return out, nil
}

// SystemIndex is SystemRoots as Roots: the machine's store for "system",
// read as x509 reads it, else the bundle at spec.
func SystemIndex(spec string) (*Roots, error) {
	if spec != System {
		return bundleIndex(spec)
	}
	blocks, ok, err := systemBlocks()
	if !ok {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("trust: loading the system store: %w", err)
		}
		return PoolRoots(pool), nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust: loading the system store: %w", err)
	}
	return indexBlocks(blocks), nil
}

// SystemIndexLater starts SystemIndex(spec) and returns a function that
// waits for it, so that reading the store overlaps the caller's first
// round trips. A store that fails to load is empty, with the error.
func SystemIndexLater(spec string) func() (*Roots, error) {
	type loaded struct {
		roots *Roots
		err   error
	}
	done := make(chan loaded, 1)
	go func() {
		r, err := SystemIndex(spec)
		done <- loaded{r, err}
	}()
	return sync.OnceValues(func() (*Roots, error) {
		l := <-done
		if l.roots == nil {
			l.roots = newRoots(nil)
		}
		return l.roots, l.err
	})
}

// VerifiedBy returns a copy of cfg that verifies the server's chain as
// crypto/tls does (for cfg.ServerName, at cfg.Time), against the roots
// roots gives when the chain arrives: the roots a chain names are parsed
// then, and a store still loading is waited for only then. cfg's
// ServerName must be final. A cfg that skips verification is returned
// as it is.
func VerifiedBy(cfg *tls.Config, roots func() *Roots) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.InsecureSkipVerify {
		return cfg
	}
	cfg = cfg.Clone()
	name, now, also := cfg.ServerName, cfg.Time, cfg.VerifyConnection
	cfg.InsecureSkipVerify = true
	cfg.RootCAs = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		certs := cs.PeerCertificates
		if name == "" {
			// crypto/tls refuses to verify for no name; x509 would
			// take any name.
			return errors.New("tls: either ServerName or InsecureSkipVerify must be specified")
		}
		if len(certs) == 0 {
			return errors.New("tls: server presented no certificate")
		}
		at := time.Now()
		if now != nil {
			at = now()
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots().For(certs), CurrentTime: at, DNSName: name, Intermediates: inter})
		if err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
		}
		if also != nil {
			return also(cs)
		}
		return nil
	}
	return cfg
}
