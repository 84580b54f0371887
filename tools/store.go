package tools

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/mitmwatch/mitmwatch/trust"
)

// readDir reads the certificates in the files of a directory that have
// lacks, as Go and OpenSSL read hashed directories, through the process's
// one scan of it (trust.ScanDir). A store directory is
// hundreds of links to the files of the bundle already read: a file is
// read once however many links name it, and a certificate have already
// holds, or another file gave, is not added again (trust parses each DER
// once a process, so the parse itself tells).
func readDir(dir string, have []trust.Block) []trust.Block {
	files, err := trust.ScanDir(dir)
	if err != nil {
		return nil
	}
	held := make(map[[32]byte]bool, len(have))
	for _, c := range have {
		held[c.Sum] = true
	}
	var read []os.FileInfo
	var out []trust.Block
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
			if isCert(b) && !held[b.Sum] {
				held[b.Sum] = true
				out = append(out, b)
			}
		}
	}
	return out
}

// parseInline reads certificates written inline in a setting (npm's ca),
// where newlines may be written as \n.
func parseInline(v string) []trust.Block {
	return pemCerts([]byte(strings.ReplaceAll(v, `\n`, "\n")))
}

// pemCerts reads the certificates of PEM text (Node's bundled roots).
func pemCerts(data []byte) []trust.Block { return certsOf(trust.Blocks(data)) }

// certsOf is the certificates of blocks, as pemCerts gives them.
func certsOf(blocks []trust.Block) []trust.Block {
	var out []trust.Block
	for _, b := range blocks {
		if isCert(b) {
			out = append(out, b)
		}
	}
	return out
}

// isCert reports whether a block is a certificate as far as can be told
// without parsing it; one x509 still rejects is left out when a chain
// names it (PoolFor), as a tool's own loader leaves it out.
func isCert(b trust.Block) bool {
	_, ok := trust.RawNames(b.DER)
	return ok && b.Type == "CERTIFICATE"
}

// fileStore is the store a setting names: a bundle file that replaces the
// tool's roots. A file the tool cannot read is kept as the store's Err:
// the tool then fails every connection.
func fileStore(what string, by Setting, path string) Store {
	s := Store{Description: fmt.Sprintf("%s %s (%s)", what, path, by.Source), Files: []string{path}, By: &by}
	certs, err := trust.LoadBlocks(path)
	if err != nil {
		s.Err = err.Error()
	}
	s.Certs = certs
	return s
}

// withExtra adds a bundle's certificates to a store, as NODE_EXTRA_CA_CERTS
// and a CA directory do.
func withExtra(s Store, what string, by Setting, certs []trust.Block) Store {
	out := s
	out.Certs = append(append([]trust.Block(nil), s.Certs...), certs...)
	out.Description = fmt.Sprintf("%s + %s %s (%d)", s.Description, what, by.Value, len(certs))
	out.Files = append(append([]string(nil), s.Files...), by.Value)
	out.By = &by
	return out
}
