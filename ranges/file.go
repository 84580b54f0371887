package ranges

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// Save writes the snapshot so that a crash or a full disk leaves either the
// old file or the new one, never half of one (see atomicfile).
func (s Snapshot) Save(path string) error {
	if s.Version != Version {
		return fmt.Errorf("ranges: saving %s: version %d, want %d", path, s.Version, Version)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("ranges: saving %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("ranges: saving %s: %w", path, err)
	}
	return nil
}

// Load reads a snapshot written by Save. Decoding is strict (unknown fields
// are errors) and every prefix is checked and normalised here, once, so that
// nothing downstream has to distrust the file.
func Load(path string) (Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("ranges: %w", err)
	}
	s, err := decode(data)
	if err != nil {
		return Snapshot{}, fmt.Errorf("ranges: %s: %w", path, err)
	}
	return s, nil
}

func decode(data []byte) (Snapshot, error) {
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Snapshot{}, err
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return Snapshot{}, errors.New("trailing data after the snapshot")
	}
	if s.Version != Version {
		return Snapshot{}, fmt.Errorf("version %d, want %d", s.Version, Version)
	}
	if len(s.Providers) == 0 {
		return Snapshot{}, errors.New("no providers")
	}
	for name, p := range s.Providers {
		if name == "" {
			return Snapshot{}, errors.New("provider with an empty name")
		}
		if err := check(p.Prefixes); err != nil {
			return Snapshot{}, fmt.Errorf("provider %s: prefixes%w", name, err)
		}
		p.Prefixes = normalize(p.Prefixes)
		for svc, ps := range p.Services {
			if err := check(ps); err != nil {
				return Snapshot{}, fmt.Errorf("provider %s: service %q%w", name, svc, err)
			}
			p.Services[svc] = normalize(ps)
		}
		s.Providers[name] = p
	}
	return s, nil
}

// check rejects the zero prefix, which JSON decodes from "" without error.
func check(ps []netip.Prefix) error {
	for i, p := range ps {
		if !p.IsValid() {
			return fmt.Errorf("[%d]: empty prefix", i)
		}
	}
	return nil
}
