package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
	"github.com/mitmwatch/mitmwatch/detector"
)

// The history file: the last changes of verdict of every target, so the
// status page can answer "when did this start?" and "was it ever clean?"
// across restarts. It is a file of its own beside state.json, not a field
// of it: the state file is read strictly and keeps the evidence of one
// probe, while history only grows, is bounded, and is not worth refusing a
// restart over. A state file without a history beside it restores as
// before; a history file that cannot be read is set aside and history
// starts empty.
const (
	historyFile    = "history.json"
	historyVersion = 1
	// historyLimit bounds the changes kept per target: enough to see a
	// flapping path, small enough that the file stays a few hundred KB
	// for hundreds of targets.
	historyLimit = 50
)

// verdictChange is one change of a target's verdict. From is empty for the
// first verdict a target ever had.
type verdictChange struct {
	At   time.Time        `json:"at"`
	From detector.Verdict `json:"from,omitempty"`
	To   detector.Verdict `json:"to"`
}

type historyDocument struct {
	Version int                        `json:"version"`
	Targets map[string][]verdictChange `json:"targets"`
}

// historyState is the daemon's history; guarded by Daemon.mu.
type historyState struct {
	path    string // "" keeps no history file
	changes map[string][]verdictChange
	dirty   bool
	saveErr string
}

// noteChange records a change of key's verdict at now, dropping the
// oldest beyond historyLimit; d.mu held.
func (d *Daemon) noteChange(key string, from, to detector.Verdict, now time.Time) {
	if from == to || to == "" {
		return
	}
	h := &d.history
	if h.changes == nil {
		h.changes = map[string][]verdictChange{}
	}
	cs := append(h.changes[key], verdictChange{At: now.UTC(), From: from, To: to})
	if n := len(cs) - historyLimit; n > 0 {
		cs = slices.Delete(cs, 0, n)
	}
	h.changes[key] = cs
	h.dirty = true
}

// changesOf returns a copy of key's changes, oldest first.
func (d *Daemon) changesOf(key string) []verdictChange {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.history.changes[key])
}

// allChanges returns a copy of every target's changes.
func (d *Daemon) allChanges() map[string][]verdictChange {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string][]verdictChange, len(d.history.changes))
	for k, cs := range d.history.changes {
		out[k] = slices.Clone(cs)
	}
	return out
}

// restoreHistory reads the history file in dir. A missing file is an empty
// history; one that cannot be used is set aside (<name>.corrupt-<unix>).
func (d *Daemon) restoreHistory(dir string) {
	d.history.path = filepath.Join(dir, historyFile)
	data, err := os.ReadFile(d.history.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		d.history.changes, err = decodeHistory(data)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", d.history.path, d.now().Unix())
		if rerr := os.Rename(d.history.path, aside); rerr != nil {
			d.log.Warn("history file unusable and not set aside; starting without history", "path", d.history.path, "err", err, "rename_err", rerr)
			return
		}
		d.log.Warn("history file unusable, set aside; starting without history", "path", d.history.path, "moved_to", aside, "err", err)
	}
}

// decodeHistory parses a history file, keeping at most historyLimit
// changes per target and only verdicts this version knows.
func decodeHistory(data []byte) (map[string][]verdictChange, error) {
	var doc historyDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding history: %w", err)
	}
	if doc.Version != historyVersion {
		return nil, fmt.Errorf("decoding history: version %d, this mitmwatch reads version %d", doc.Version, historyVersion)
	}
	for k, cs := range doc.Targets {
		cs = slices.DeleteFunc(cs, func(c verdictChange) bool { return !slices.Contains(detector.Verdicts, c.To) })
		if n := len(cs) - historyLimit; n > 0 {
			cs = cs[n:]
		}
		doc.Targets[k] = cs
	}
	return doc.Targets, nil
}

// saveHistory writes the history file atomically when it changed. Like
// save, a failing write is logged once per distinct error and retried.
func (d *Daemon) saveHistory() {
	d.mu.Lock()
	h := &d.history
	if h.path == "" || !h.dirty {
		d.mu.Unlock()
		return
	}
	doc := historyDocument{Version: historyVersion, Targets: make(map[string][]verdictChange, len(h.changes))}
	for k, cs := range h.changes {
		doc.Targets[k] = slices.Clone(cs)
	}
	h.dirty = false
	path := h.path
	d.mu.Unlock()

	data, err := json.MarshalIndent(doc, "", "  ")
	if err == nil {
		err = atomicfile.Write(path, append(data, '\n'), 0o644)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		h.dirty = true
		if msg := err.Error(); msg != h.saveErr {
			h.saveErr = msg
			d.log.Warn("saving history failed; will retry", "path", path, "err", err)
		}
		return
	}
	h.saveErr = ""
}
