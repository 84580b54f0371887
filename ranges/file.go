package ranges

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
)

// Save writes the snapshot so that a crash or a full disk leaves either the
// old file or the new one, never half of one: a temporary file beside path
// is synced and renamed over it, and the directory synced so the rename
// itself survives a power cut.
func (s Snapshot) Save(path string) error {
	if s.Version != Version {
		return fmt.Errorf("ranges: saving %s: version %d, want %d", path, s.Version, Version)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("ranges: saving %s: %w", path, err)
	}
	if err := writeAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("ranges: saving %s: %w", path, err)
	}
	return nil
}

func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // the new file is in place; only its durability is unconfirmed
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
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
