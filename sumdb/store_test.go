package sumdb

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmwatch/mitmwatch/sumdb/sumdbtest"
)

func labLog(t *testing.T, n int) (*sumdbtest.Log, Database) {
	t.Helper()
	l, err := sumdbtest.NewLog("sum.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(n, "a"); err != nil {
		t.Fatal(err)
	}
	db, _, err := ParseGOSUMDB(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return l, db
}

func TestStoreKeepsAndVerifies(t *testing.T) {
	t.Parallel()
	l, db := labLog(t, 7)
	head, err := l.Head()
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := l.Tree()
	s := &Store{Path: filepath.Join(t.TempDir(), "state", StateFile)}
	if _, ok, err := s.Load(db); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.Save(db, Kept{Note: head, Tree: tree, VerifiedAt: at, GrownAt: at}); err != nil {
		t.Fatal(err)
	}
	k, ok, err := s.Load(db)
	if !ok || err != nil || k.Tree != tree || !k.VerifiedAt.Equal(at) {
		t.Fatalf("Load = %+v %v %v", k, ok, err)
	}
	data, _ := os.ReadFile(s.Path)
	var doc stateDocument
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Databases) != 1 {
		t.Fatalf("file %s: %v", data, err)
	}

	// A record whose note another key signed cannot stand in for a tree.
	forger, _ := labLog(t, 1)
	forged, err := l.SignedBy(forger)
	if err != nil {
		t.Fatal(err)
	}
	doc.Databases[db.Name] = stateRecord{Note: string(forged), VerifiedAt: at, GrownAt: at}
	data, _ = json.Marshal(doc)
	os.WriteFile(s.Path, data, 0o644)
	if _, ok, err := s.Load(db); ok || err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("forged record: ok %v err %v", ok, err)
	}

	// An empty file, as a power cut can leave one (Save does not sync),
	// is no tree: it is named, and the next tree verified replaces it.
	must(t, os.WriteFile(s.Path, nil, 0o644))
	if _, ok, err := s.Load(db); ok || err == nil || !strings.Contains(err.Error(), s.Path) || !errors.Is(err, io.EOF) {
		t.Fatalf("empty file: ok %v err %v", ok, err)
	}
	if err := s.Save(db, Kept{Note: head, Tree: tree, VerifiedAt: at, GrownAt: at}); err != nil {
		t.Fatal(err)
	}
	if k, ok, err := s.Load(db); !ok || err != nil || k.Tree != tree {
		t.Fatalf("after an empty file: Load = %+v %v %v", k, ok, err)
	}
}

// A tree smaller than the one kept, saved by a check that overlapped
// another and finished last, does not roll the kept tree back.
func TestStoreKeepsTheLargerTree(t *testing.T) {
	t.Parallel()
	l, db := labLog(t, 5)
	older, err := l.Head()
	must(t, err)
	olderTree, _ := l.Tree()
	must(t, l.Add(2, "b"))
	newer, err := l.Head()
	must(t, err)
	newerTree, _ := l.Tree()
	s := &Store{Path: filepath.Join(t.TempDir(), StateFile)}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, s.Save(db, Kept{Note: newer, Tree: newerTree, VerifiedAt: at, GrownAt: at}))
	must(t, s.Save(db, Kept{Note: older, Tree: olderTree, VerifiedAt: at.Add(time.Second), GrownAt: at}))
	if k, ok, err := s.Load(db); !ok || err != nil || k.Tree != newerTree {
		t.Fatalf("after saving size %d over size %d: Load = %+v %v %v", olderTree.N, newerTree.N, k.Tree, ok, err)
	}
	// A larger one replaces it.
	must(t, l.Add(1, "c"))
	largest, err := l.Head()
	must(t, err)
	largestTree, _ := l.Tree()
	must(t, s.Save(db, Kept{Note: largest, Tree: largestTree, VerifiedAt: at, GrownAt: at}))
	if k, _, _ := s.Load(db); k.Tree != largestTree {
		t.Fatalf("a larger tree was not kept: %+v", k.Tree)
	}
}

func TestParseStateRefuses(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		``, `{}`, `{"version":2,"databases":{}}`, `{"version":1,"databases":{},"extra":1}`,
		`{"version":1} {"version":1}`, `[]`, `{"version":1,"databases":{"a":{"note":1}}}`,
	} {
		if _, err := parseState([]byte(bad)); err == nil {
			t.Errorf("parseState(%q) accepted", bad)
		}
	}
	if doc, err := parseState([]byte(`{"version":1}`)); err != nil || doc.Databases == nil {
		t.Errorf("a file with no databases: %+v %v", doc, err)
	}
}

// FuzzState: no state file, however broken, makes the store fail other
// than with an error, or accept a tree the database's key did not sign.
func FuzzState(f *testing.F) {
	l, err := sumdbtest.NewLog("sum.lab.example")
	if err != nil {
		f.Fatal(err)
	}
	l.Add(5, "a")
	head, _ := l.Head()
	good, _ := json.Marshal(stateDocument{Version: 1, Databases: map[string]stateRecord{"sum.lab.example": {Note: string(head)}}})
	f.Add(good)
	f.Add([]byte(`{"version":1,"databases":{"sum.lab.example":{"note":"go.sum database tree\n5\nAAAA\n\n— sum.lab.example AAAA\n"}}}`))
	f.Add([]byte(`{"version":1,"databases":{}}`))
	db, _, err := ParseGOSUMDB(l.VerifierKey())
	if err != nil {
		f.Fatal(err)
	}
	tree, _ := l.Tree()
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseState(data)
		if err != nil {
			return
		}
		rec, ok := doc.Databases[db.Name]
		if !ok {
			return
		}
		k, err := openKept(db, rec)
		if err != nil {
			return
		}
		// Only the log's own head verifies: the fuzzer cannot sign.
		if k.Tree != tree {
			t.Fatalf("accepted a tree the key did not sign: %+v", k.Tree)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
