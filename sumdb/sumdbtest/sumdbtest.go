// Package sumdbtest plays a Go checksum database for tests and the demo: a
// transparency log built with golang.org/x/mod/sumdb/tlog, its tree heads
// signed with golang.org/x/mod/sumdb/note under a test key, served at
// /latest and /tile/... as the go command reads them, directly or under a
// module proxy's /sumdb/<name>/. The same log can grow, be forked (another
// history with the same key), or be signed by another key: the situations
// the check must tell apart. It is test support, kept out of the mitmwatch
// binary.
package sumdbtest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Log is an append-only log of records with its stored hashes. Its methods
// are safe for concurrent use.
type Log struct {
	name   string
	signer note.Signer
	vkey   string

	mu     sync.Mutex
	n      int64
	hashes []tlog.Hash // stored hashes, as tlog.StoredHashes lays them out
	// pinned, when set, is the tree head served instead of the latest: an
	// old head replayed.
	pinned []byte
}

// NewLog makes an empty log named name with a fresh key.
func NewLog(name string) (*Log, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, fmt.Errorf("sumdbtest: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("sumdbtest: %w", err)
	}
	return &Log{name: name, signer: signer, vkey: vkey}, nil
}

// Name is the database's name.
func (l *Log) Name() string { return l.name }

// VerifierKey is the key a GOSUMDB value gives: name+hash+key.
func (l *Log) VerifierKey() string { return l.vkey }

// Add appends n records, each a go.sum-like line made of seed and its
// index, so two logs fed different seeds differ from their first record.
func (l *Log) Add(n int, seed string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		rec := fmt.Appendf(nil, "example.com/m%d %s v1.0.%d h1:%s\n", l.n, seed, l.n, seed)
		hs, err := tlog.StoredHashes(l.n, rec, l.reader())
		if err != nil {
			return fmt.Errorf("sumdbtest: record %d: %w", l.n, err)
		}
		l.hashes = append(l.hashes, hs...)
		l.n++
	}
	return nil
}

// Fork copies the log with its key: a second history that can diverge.
func (l *Log) Fork() *Log {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &Log{name: l.name, signer: l.signer, vkey: l.vkey, n: l.n, hashes: append([]tlog.Hash(nil), l.hashes...)}
}

// Size is the number of records.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *Log) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// Tree is the log's current tree.
func (l *Log) Tree() (tlog.Tree, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree()
}

func (l *Log) tree() (tlog.Tree, error) {
	h, err := tlog.TreeHash(l.n, l.reader())
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("sumdbtest: %w", err)
	}
	return tlog.Tree{N: l.n, Hash: h}, nil
}

// Head is the current tree head, signed with the log's key.
func (l *Log) Head() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head()
}

func (l *Log) head() ([]byte, error) {
	t, err := l.tree()
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(tlog.FormatTree(t))}, l.signer)
}

// SignedBy is the log's current tree head signed by other's key instead:
// a head from someone who does not hold the database's key.
func (l *Log) SignedBy(other *Log) ([]byte, error) {
	l.mu.Lock()
	t, err := l.tree()
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(tlog.FormatTree(t))}, other.signer)
}

// Replay makes the log serve head as its latest from now on (nil: its own
// latest again): an old head replayed, or one signed by another key.
func (l *Log) Replay(head []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pinned = head
}

// ServeHTTP serves /latest and /tile/H/L/NNN[.p/W] as a checksum
// database does. Data tiles are not served: a tree proof needs none.
func (l *Log) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case r.URL.Path == "/latest":
		head := l.pinned
		if head == nil {
			var err error
			if head, err = l.head(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(head)
	case strings.HasPrefix(r.URL.Path, "/tile/"):
		t, err := tlog.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil || t.L < 0 {
			http.NotFound(w, r)
			return
		}
		if t.N<<uint(t.H)+int64(t.W) > l.n>>uint(t.L*t.H) {
			// Beyond the tree: not there (yet).
			http.NotFound(w, r)
			return
		}
		data, err := tlog.ReadTileData(t, l.reader())
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

// Proxy serves a module proxy that proxies the logs it is given, as
// /sumdb/<name>/supported, /latest and /tile/...; any other database is
// 404, so the go command goes to it directly.
type Proxy struct {
	mu   sync.Mutex
	logs map[string]http.Handler
}

// NewProxy makes a proxy that serves logs.
func NewProxy(logs ...*Log) *Proxy {
	p := &Proxy{logs: map[string]http.Handler{}}
	for _, l := range logs {
		p.logs[l.Name()] = l
	}
	return p
}

// Serve makes the proxy serve h for the database name (nil: stop serving
// it).
func (p *Proxy) Serve(name string, h http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h == nil {
		delete(p.logs, name)
		return
	}
	p.logs[name] = h
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/sumdb/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	p.mu.Lock()
	var h http.Handler
	var name, sub string
	for n, l := range p.logs {
		if s, ok := strings.CutPrefix(rest, n+"/"); ok {
			h, name, sub = l, n, s
		}
	}
	p.mu.Unlock()
	if h == nil || name == "" {
		http.NotFound(w, r)
		return
	}
	if sub == "supported" {
		w.WriteHeader(http.StatusOK)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + sub
	h.ServeHTTP(w, r2)
}
