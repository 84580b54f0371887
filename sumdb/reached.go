package sumdb

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// ReachedFile is the name of the file Reached keeps its addresses in,
// beside StateFile.
const ReachedFile = "sumdb-reached.json"

// Limits on the file: a few hosts take a hundred bytes.
const (
	maxReachedSize  = 64 << 10
	maxReachedHosts = 64
)

// Reached keeps, for each host:port a check connected to by name, where
// it was reached and who chose the address (Reach). The next check opens
// its connection there while the name resolves (DialerFrom): the
// database's chain of round trips (a lookup, a connection, TLS, the signed
// head, the tiles) is the longest of a check, and a host that has not
// moved is then reached a round trip or two sooner.
//
// It is a file of its own, not a field of the state file's records: older
// releases read that file strictly and would start their trees again. What
// it holds is only ever a guess the resolution must confirm, so a missing,
// broken or foreign file is an empty one.
type Reached struct {
	Path string
}

// reachedMu makes one Save at a time in this process, whatever the
// Reached: a daemon's runners before and after a reload share the file.
// Two processes on one file may still lose one's update: a head start,
// nothing else.
var reachedMu sync.Mutex

// reachedDocument is the file.
type reachedDocument struct {
	Version int                      `json:"version"`
	Hosts   map[string]reachedRecord `json:"hosts"` // by host:port
}

type reachedRecord struct {
	Addr string `json:"addr,omitempty"` // none: no first address to open early
	// By is "go" for Go's own dialer, "system" for the system's
	// resolution dialed in order.
	By string `json:"by"`
}

const reachedVersion = 1

// Load returns where each host:port was reached; a nil Reached knows
// nothing.
func (r *Reached) Load() map[string]Reach {
	if r == nil {
		return nil
	}
	return readReached(r.Path)
}

func readReached(path string) map[string]Reach {
	out := map[string]Reach{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxReachedSize+1))
	if err != nil || len(data) > maxReachedSize {
		return out
	}
	var doc reachedDocument
	if json.Unmarshal(data, &doc) != nil || doc.Version != reachedVersion || len(doc.Hosts) > maxReachedHosts {
		return out
	}
	for host, rec := range doc.Hosts {
		var a Reach
		switch rec.By {
		case "go":
			a.ByGo = true
		case "system":
		default:
			continue
		}
		if rec.Addr != "" {
			addr, err := netip.ParseAddr(rec.Addr)
			if err != nil {
				continue
			}
			a.Addr = addr
		}
		if kept(a) {
			out[host] = a
		}
	}
	return out
}

// kept reports whether a Reach says anything the next dial can use: an
// address to open early, or that Go's dialer decides.
func kept(a Reach) bool { return a.Addr.IsValid() || a.ByGo }

// Save records what a check's connections found: for each host:port where
// it was reached, or a Reach that says nothing (no first address, not Go's
// dialer) to forget it. Hosts it does not name keep theirs, as the file
// has them now: another process may have saved since this one loaded. It
// writes only a change, and a failure to write costs the next check its
// head start, nothing else.
func (r *Reached) Save(found map[string]Reach) error {
	if r == nil || len(found) == 0 {
		return nil
	}
	reachedMu.Lock()
	defer reachedMu.Unlock()
	had := readReached(r.Path)
	next := maps.Clone(had)
	for host, a := range found {
		if kept(a) {
			next[host] = a
		} else {
			delete(next, host)
		}
	}
	if len(next) > maxReachedHosts {
		// The hosts of this check, not a list that only grows.
		next = maps.Clone(found)
		maps.DeleteFunc(next, func(_ string, a Reach) bool { return !kept(a) })
		if len(next) > maxReachedHosts {
			return nil
		}
	}
	if maps.Equal(next, had) {
		return nil
	}
	doc := reachedDocument{Version: reachedVersion, Hosts: map[string]reachedRecord{}}
	for host, a := range next {
		rec := reachedRecord{By: "system"}
		if a.ByGo {
			rec.By = "go"
		}
		if a.Addr.IsValid() {
			rec.Addr = a.Addr.String()
		}
		doc.Hosts[host] = rec
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("sumdb reached: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o750); err != nil {
		return fmt.Errorf("sumdb reached: %w", err)
	}
	if err := atomicfile.Replace(r.Path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("sumdb reached: %w", err)
	}
	return nil
}
