package tools

import (
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/detector"
	"github.com/mitmwatch/mitmwatch/trust"
)

// readDir reads the certificates in the files of a directory that have
// lacks, as Go and OpenSSL read hashed directories, through the process's
// one scan of it (trust.ScanDir). A store directory is
// hundreds of links to the files of the bundle already read: a file is
// read once however many links name it, and a certificate have already
// holds, or another file gave, is not added again (trust parses each DER
// once a process, so the parse itself tells).
func readDir(dir string, have []*x509.Certificate) []*x509.Certificate {
	files, err := trust.ScanDir(dir)
	if err != nil {
		return nil
	}
	held := make(map[*x509.Certificate]bool, len(have)) // trust parses each DER once
	for _, c := range have {
		held[c] = true
	}
	var read []os.FileInfo
	var out []*x509.Certificate
	for _, f := range files {
		fi := f.Info
		if f.Err != nil || !fi.Mode().IsRegular() || slices.ContainsFunc(read, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
			continue
		}
		read = append(read, fi)
		blocks, err := trust.Bundle(f.Path, fi, os.ReadFile)
		if err != nil {
			continue
		}
		for _, b := range blocks {
			if b.Type != "CERTIFICATE" {
				continue
			}
			if c, err := b.Cert(); err == nil && !held[c] {
				held[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// parseInline reads certificates written inline in a setting (npm's ca),
// where newlines may be written as \n.
func parseInline(v string) []*x509.Certificate {
	return pemCerts([]byte(strings.ReplaceAll(v, `\n`, "\n")))
}

// pemCerts parses the certificates of PEM text.
func pemCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for _, b := range trust.Blocks(data) {
		// Node's bundled roots, mostly the Mozilla roots the check has
		// already parsed.
		if c, err := b.Cert(); err == nil && b.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
	return out
}

// fileStore is the store a setting names: a bundle file that replaces the
// tool's roots. A file the tool cannot read is kept as the store's Err:
// the tool then fails every connection.
func fileStore(what string, by Setting, path string) Store {
	s := Store{Description: fmt.Sprintf("%s %s (%s)", what, path, by.Source), Files: []string{path}, By: &by}
	certs, err := trust.LoadCerts(path)
	if err != nil {
		s.Err = err.Error()
	}
	s.Certs = certs
	return s
}

// withExtra adds a bundle's certificates to a store, as NODE_EXTRA_CA_CERTS
// and a CA directory do.
func withExtra(s Store, what string, by Setting, certs []*x509.Certificate) Store {
	out := s
	out.Certs = append(append([]*x509.Certificate(nil), s.Certs...), certs...)
	out.Description = fmt.Sprintf("%s + %s %s (%d)", s.Description, what, by.Value, len(certs))
	out.Files = append(append([]string(nil), s.Files...), by.Value)
	out.By = &by
	return out
}

// holds reports whether a store has the certificate (by key).
func (s Store) holds(c *x509.Certificate) bool {
	k := detector.SPKIOf(c)
	for _, h := range s.Certs {
		if detector.SPKIOf(h) == k {
			return true
		}
	}
	return false
}
