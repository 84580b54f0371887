package sumdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// StateFile is the name of the file the kept trees live in, inside the
// state directory (`run`, `baseline learn`) or the user's cache directory
// (`check`).
const StateFile = "sumdb.json"

// stateVersion is the state file's format.
const stateVersion = 1

// maxStateSize bounds what is read of a state file: a few databases' notes
// take a kilobyte.
const maxStateSize = 1 << 20

// Store keeps the last verified tree head of each database in one file,
// written atomically. The head is kept as the signed note it was served as,
// and verified again with the database's key when it is read: a state file
// edited by hand, or kept from another key, cannot stand in for a tree the
// database signed.
type Store struct {
	Path string
	mu   sync.Mutex // one check at a time reads and rewrites the file
}

// Kept is a tree head kept from an earlier check.
type Kept struct {
	Note []byte    // the signed tree head as served
	Tree tlog.Tree // what it says, once verified
	// VerifiedAt is when it was last verified; GrownAt when a tree of its
	// size was first seen.
	VerifiedAt time.Time
	GrownAt    time.Time
}

// stateDocument is the state file.
type stateDocument struct {
	Version   int                    `json:"version"`
	Databases map[string]stateRecord `json:"databases"`
}

// stateRecord is one database's kept head.
type stateRecord struct {
	Note       string    `json:"note"`
	VerifiedAt time.Time `json:"verified_at"`
	GrownAt    time.Time `json:"grown_at"`
}

// parseState reads a state file. It refuses what it does not know rather
// than guess, so that a newer format is never half read.
func parseState(data []byte) (stateDocument, error) {
	var doc stateDocument
	if len(data) > maxStateSize {
		return doc, fmt.Errorf("%d bytes, more than %d", len(data), maxStateSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return stateDocument{}, err
	}
	if dec.More() {
		return stateDocument{}, errors.New("data after the document")
	}
	if doc.Version != stateVersion {
		return stateDocument{}, fmt.Errorf("version %d, want %d", doc.Version, stateVersion)
	}
	if doc.Databases == nil {
		doc.Databases = map[string]stateRecord{}
	}
	return doc, nil
}

// read reads the file; a missing one is an empty state.
func (s *Store) read() (stateDocument, error) {
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return stateDocument{Version: stateVersion, Databases: map[string]stateRecord{}}, nil
	}
	if err != nil {
		return stateDocument{}, fmt.Errorf("reading %s: %w", s.Path, err)
	}
	doc, err := parseState(data)
	if err != nil {
		return stateDocument{}, fmt.Errorf("%s: %w", s.Path, err)
	}
	return doc, nil
}

// Load returns the kept head of db, verified with db's key; ok is false
// when none is kept. An error means the file or the record cannot be used.
func (s *Store) Load(db Database) (k Kept, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.read()
	if err != nil {
		return Kept{}, false, err
	}
	rec, ok := doc.Databases[db.Name]
	if !ok {
		return Kept{}, false, nil
	}
	k, err = openKept(db, rec)
	if err != nil {
		return Kept{}, false, fmt.Errorf("%s: the tree kept for %s: %w", s.Path, db.Name, err)
	}
	return k, true, nil
}

// openKept verifies a kept record with the database's key.
func openKept(db Database, rec stateRecord) (Kept, error) {
	v, err := note.NewVerifier(db.Key)
	if err != nil {
		return Kept{}, err
	}
	n, err := note.Open([]byte(rec.Note), note.VerifierList(v))
	if err != nil {
		return Kept{}, fmt.Errorf("its note does not verify with the key: %w", err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return Kept{}, err
	}
	return Kept{Note: []byte(rec.Note), Tree: tree, VerifiedAt: rec.VerifiedAt, GrownAt: rec.GrownAt}, nil
}

// Save keeps k as db's head, leaving the other databases' alone, unless
// the file already keeps a larger tree of db's. A file that cannot be read
// is replaced: the head just verified is worth more than a broken file.
func (s *Store) Save(db Database, k Kept) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.read()
	if err != nil {
		doc = stateDocument{Version: stateVersion, Databases: map[string]stateRecord{}}
	}
	if rec, ok := doc.Databases[db.Name]; ok {
		if kept, err := openKept(db, rec); err == nil && kept.Tree.N > k.Tree.N {
			// A check that overlapped this one (another process, or a
			// daemon's runner before a reload) kept a larger tree the
			// database signed: a log only grows, and rolling the kept
			// tree back would let the next check miss a fork of it.
			return nil
		}
	}
	doc.Databases[db.Name] = stateRecord{Note: string(k.Note), VerifiedAt: k.VerifiedAt.UTC(), GrownAt: k.GrownAt.UTC()}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("sumdb state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o750); err != nil {
		return fmt.Errorf("sumdb state: %w", err)
	}
	// Not synced: a check waits for this write, the last step of its
	// chain, and two syncs cost it milliseconds. A power cut leaves the
	// tree kept before (still proved from) or an empty file (the next
	// check starts again from the tree it is served, and says why).
	return atomicfile.Replace(s.Path, append(data, '\n'), 0o644)
}
