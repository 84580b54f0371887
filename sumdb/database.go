// Package sumdb checks a Go checksum database through the path the go
// command takes to it: through the module proxy when the proxy says it
// serves the database, else directly. It reads the latest signed tree head,
// verifies the note's signature with the database's key, and proves with
// the log's tiles that the tree extends the one this machine kept from its
// last check, then keeps the new one.
//
// TLS only says who terminated the connection; the signed tree heads and
// tiles say that the module hashes every go get checks come from one
// append-only log, and no interceptor, approved or not, can forge them.
// What it can do — block the database, serve an old head, or show a forked
// tree — is what this check records. Notes and tiles are verified by
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog; nothing of
// either is reimplemented here. Judging is package detector's.
package sumdb

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// knownKey is the verifier key the go command uses for its default
// checksum database when GOSUMDB gives that database's name without a key.
// Copied from the Go distribution, src/cmd/go/internal/modfetch/key.go
// (the map knownGOSUMDB), Go 1.26; the go command keeps it there and
// nowhere else.
const knownKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

// DefaultName is the name of the go command's default checksum database,
// read from its well-known key so that it is written down once.
func DefaultName() string {
	name, _, _ := strings.Cut(knownKey, "+")
	return name
}

// DefaultGOSUMDB is the GOSUMDB value that selects the go command's
// default database with its well-known key.
func DefaultGOSUMDB() string { return knownKey }

// Database says which checksum database to check and how the go command
// reaches it.
type Database struct {
	Name string // from the key: host[/path]
	Key  string // the verifier key, name+hash+key
	// URL is the database's address when GOSUMDB gives one ("name+key
	// url"): the go command then goes there directly, past any proxy.
	URL string
	// Proxies are GOPROXY's entries in order, "direct" and "off"
	// included: the go command asks each for /sumdb/<name>/supported.
	Proxies []Proxy
}

// Proxy is one GOPROXY entry.
type Proxy struct {
	URL string // an http(s) URL, or "direct" or "off"
	// FallBackOnError says the entry was followed by "|": any error
	// moves on to the next entry, not only 404 and 410.
	FallBackOnError bool
}

// ParseGOSUMDB reads a GOSUMDB value as the go command does: "off",
// "name" (only the default database's name, whose key is well known),
// "name+hash+key", or either followed by the URL to reach it at. off
// reports GOSUMDB=off, which names no database.
func ParseGOSUMDB(v string) (db Database, off bool, err error) {
	f := strings.Fields(v)
	switch {
	case len(f) == 1 && f[0] == "off":
		return Database{}, true, nil
	case len(f) == 0:
		return Database{}, false, errors.New("GOSUMDB is empty")
	case len(f) > 2:
		return Database{}, false, fmt.Errorf("GOSUMDB %q: too many fields", v)
	}
	key := f[0]
	if key == DefaultName() {
		key = knownKey
	}
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return Database{}, false, fmt.Errorf("GOSUMDB %q: %w (a database other than the default needs its key: name+hash+key)", v, err)
	}
	db = Database{Name: verifier.Name(), Key: key}
	if err := checkName(db.Name); err != nil {
		return Database{}, false, fmt.Errorf("GOSUMDB %q: %w", v, err)
	}
	if len(f) == 2 {
		u, err := url.Parse(f[1])
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Database{}, false, fmt.Errorf("GOSUMDB %q: URL %q: want an http or https URL", v, f[1])
		}
		db.URL = strings.TrimSuffix(f[1], "/")
	}
	return db, false, nil
}

// checkName refuses what the go command refuses: a database name must be
// host[/path], with nothing a URL would read otherwise.
func checkName(name string) error {
	u, err := url.Parse("https://" + name)
	if err != nil || strings.HasSuffix(name, "/") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		u.User != nil || u.RawPath != "" || u.Opaque != "" || u.Host+u.Path != name {
		return fmt.Errorf("invalid database name %q (must be host[/path])", name)
	}
	return nil
}

// ParseGOPROXY reads a GOPROXY list as the go command does: entries
// separated by "," (fall back on 404 and 410 only) or "|" (fall back on
// any error), "direct" and "off" ending the list, and an entry without a
// scheme taken as https. File URLs serve no database and are skipped.
func ParseGOPROXY(v string) ([]Proxy, error) {
	var out []Proxy
	for v != "" {
		var entry string
		fallBack := false
		if i := strings.IndexAny(v, ",|"); i >= 0 {
			entry, fallBack, v = v[:i], v[i] == '|', v[i+1:]
		} else {
			entry, v = v, ""
		}
		entry = strings.TrimSpace(entry)
		switch {
		case entry == "":
			continue
		case entry == "direct" || entry == "off":
			return append(out, Proxy{URL: entry}), nil
		case strings.ContainsAny(entry, ".:/") && !strings.Contains(entry, ":/") && !filepath.IsAbs(entry) && !path.IsAbs(entry):
			entry = "https://" + entry
		}
		u, err := url.Parse(entry)
		if err != nil {
			return nil, fmt.Errorf("GOPROXY entry %q: %w", entry, err)
		}
		switch u.Scheme {
		case "https", "http":
			out = append(out, Proxy{URL: strings.TrimSuffix(entry, "/"), FallBackOnError: fallBack})
		case "file":
		default:
			return nil, fmt.Errorf("GOPROXY entry %q: want an http or https URL, direct or off", entry)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("GOPROXY lists no entry")
	}
	return out, nil
}

// Redacted is a URL with its password removed, for reports.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
