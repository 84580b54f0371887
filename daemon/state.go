package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
	"github.com/mitmwatch/mitmwatch/exporter"
)

// The state file: the last result of every target, so that after a restart
// the status page and the metrics show what was known until fresh probes
// replace it.
const (
	stateFile    = "state.json"
	stateVersion = 1
)

type state struct {
	Version int               `json:"version"`
	SavedAt time.Time         `json:"saved_at"`
	Targets []exporter.Target `json:"targets"`
}

// restore reads the state file. One that cannot be used is renamed to
// <name>.corrupt-<unix> for a human to look at, and the daemon starts empty.
func (d *Daemon) restore() map[string]exporter.Target {
	data, err := os.ReadFile(d.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var recs map[string]exporter.Target
	if err == nil {
		recs, err = decodeState(data)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", d.statePath, d.now().Unix())
		if rerr := os.Rename(d.statePath, aside); rerr != nil {
			d.log.Warn("state file unusable and not set aside; starting empty", "path", d.statePath, "err", err, "rename_err", rerr)
		} else {
			d.log.Warn("state file unusable, set aside; starting empty", "path", d.statePath, "moved_to", aside, "err", err)
		}
		return nil
	}
	d.log.Info("state restored", "path", d.statePath, "targets", len(recs))
	return recs
}

// decodeState parses a state file strictly: a file this version did not
// write is not guessed at.
func decodeState(data []byte) (map[string]exporter.Target, error) {
	var s state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decoding state: data after the document")
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state version %d, want %d", s.Version, stateVersion)
	}
	out := make(map[string]exporter.Target, len(s.Targets))
	for i, st := range s.Targets {
		if st.Key == "" {
			return nil, fmt.Errorf("state: targets[%d]: no key", i)
		}
		if _, dup := out[st.Key]; dup {
			return nil, fmt.Errorf("state: targets[%d]: duplicate key %q", i, st.Key)
		}
		out[st.Key] = st
	}
	return out, nil
}

func encodeState(recs []exporter.Target, now time.Time) ([]byte, error) {
	s := state{Version: stateVersion, SavedAt: now.UTC(), Targets: recs}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(data, '\n'), nil
}

// save writes the state file atomically if results changed since the last
// write. A failing write is logged once per distinct error and retried on a
// later tick; it never stops the probes.
func (d *Daemon) save() {
	if d.statePath == "" {
		return
	}
	d.mu.Lock()
	if !d.dirty {
		d.mu.Unlock()
		return
	}
	recs := make([]exporter.Target, 0, len(d.keys))
	for _, k := range d.keys {
		recs = append(recs, d.targets[k].rec)
	}
	d.dirty = false
	now := d.now()
	d.mu.Unlock()

	data, err := encodeState(recs, now)
	if err == nil {
		err = atomicfile.Write(d.statePath, data, 0o644)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.dirty = true
		if msg := err.Error(); msg != d.saveErr {
			d.saveErr = msg
			d.log.Warn("saving state failed; will retry", "err", err)
		}
		return
	}
	if d.saveErr != "" {
		d.saveErr = ""
		d.log.Info("saving state works again", "path", d.statePath)
	}
}
