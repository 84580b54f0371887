package sumdbtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func mustLog(t *testing.T, records int, seed string) *Log {
	t.Helper()
	l, err := NewLog("sum.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(records, seed); err != nil {
		t.Fatal(err)
	}
	return l
}

func openHead(t *testing.T, l *Log, head []byte) (*note.Note, error) {
	t.Helper()
	v, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return note.Open(head, note.VerifierList(v))
}

// The log is a real one: its head verifies with its key and names its
// tree; a head signed by another key does not verify; a fork that
// diverges has another hash at the same size; the tiles it serves prove
// an older tree is contained in the newer.
func TestLog(t *testing.T) {
	l := mustLog(t, 10, "a")
	head, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	n, err := openHead(t, l, head)
	if err != nil {
		t.Fatalf("the head does not verify with the log's key: %v", err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil || tree.N != 10 {
		t.Fatalf("head names %+v (%v), want 10 records", tree, err)
	}

	other := mustLog(t, 1, "b")
	forged, err := l.SignedBy(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openHead(t, l, forged); err == nil {
		t.Error("a head signed by another key verified")
	}

	fork := l.Fork()
	if err := fork.Add(5, "fork"); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(5, "a"); err != nil {
		t.Fatal(err)
	}
	main, _ := l.Tree()
	forked, _ := fork.Tree()
	if main.N != forked.N || main.Hash == forked.Hash {
		t.Errorf("fork: %d %v against %d %v, want one size and two hashes", forked.N, forked.Hash, main.N, main.Hash)
	}

	srv := httptest.NewServer(l)
	defer srv.Close()
	hr := tlog.TileHashReader(main, tileReader{t, srv.URL, 8})
	p, err := tlog.ProveTree(main.N, tree.N, hr)
	if err != nil {
		t.Fatalf("proving the old tree from the served tiles: %v", err)
	}
	if err := tlog.CheckTree(p, main.N, main.Hash, tree.N, tree.Hash); err != nil {
		t.Errorf("the served tiles do not prove the old tree: %v", err)
	}
}

// tileReader fetches tiles of height h over HTTP, as a client does.
type tileReader struct {
	t   *testing.T
	url string
	h   int
}

func (r tileReader) Height() int { return r.h }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		resp, err := http.Get(r.url + "/" + tile.Path())
		if err != nil {
			return nil, err
		}
		data := make([]byte, tile.W*tlog.HashSize)
		_, err = io.ReadFull(resp.Body, data)
		resp.Body.Close()
		if err != nil {
			r.t.Errorf("tile %s: %v", tile.Path(), err)
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
