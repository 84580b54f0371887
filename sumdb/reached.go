package sumdb

import (
	"encoding/json"
	"fmt"
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
	mu   sync.Mutex
	had  map[string]Reach // as loaded, to write only what changed
}

// reachedDocument is the file.
type reachedDocument struct {
	Version int                      `json:"version"`
	Hosts   map[string]reachedRecord `json:"hosts"` // by host:port
}

type reachedRecord struct {
	Addr string `json:"addr"`
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
	r.mu.Lock()
	defer r.mu.Unlock()
	r.had = readReached(r.Path)
	return maps.Clone(r.had)
}

func readReached(path string) map[string]Reach {
	out := map[string]Reach{}
	data, err := os.ReadFile(path)
	if err != nil || len(data) > maxReachedSize {
		return out
	}
	var doc reachedDocument
	if json.Unmarshal(data, &doc) != nil || doc.Version != reachedVersion || len(doc.Hosts) > maxReachedHosts {
		return out
	}
	for host, rec := range doc.Hosts {
		addr, err := netip.ParseAddr(rec.Addr)
		if err != nil || (rec.By != "go" && rec.By != "system") {
			continue
		}
		out[host] = Reach{Addr: addr, ByGo: rec.By == "go"}
	}
	return out
}

// Save records what a check's connections found: for each host:port where
// it was reached, or a zero Reach to forget it (dialed by address). Hosts
// it does not name keep theirs. It writes only a change, and a failure to
// write costs the next check its head start, nothing else.
func (r *Reached) Save(found map[string]Reach) error {
	if r == nil || len(found) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.had == nil {
		r.had = readReached(r.Path)
	}
	next := maps.Clone(r.had)
	for host, a := range found {
		if a.Addr.IsValid() {
			next[host] = a
		} else {
			delete(next, host)
		}
	}
	if maps.Equal(next, r.had) {
		return nil
	}
	if len(next) > maxReachedHosts {
		next = maps.Clone(found) // the hosts of this check, not a growing list
		maps.DeleteFunc(next, func(_ string, a Reach) bool { return !a.Addr.IsValid() })
	}
	doc := reachedDocument{Version: reachedVersion, Hosts: map[string]reachedRecord{}}
	for host, a := range next {
		by := "system"
		if a.ByGo {
			by = "go"
		}
		doc.Hosts[host] = reachedRecord{Addr: a.Addr.String(), By: by}
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
	r.had = next
	return nil
}
