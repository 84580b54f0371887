package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestSystemRootsAsX509: the system store mitmwatch reads is the one Go's
// own crypto/x509 reads on this machine, certificate for certificate.
func TestSystemRootsAsX509(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the store is files on Linux only")
	}
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("x509 has no system store here: %v", err)
	}
	got, err := SystemRoots(System)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Error("SystemRoots(System) differs from x509.SystemCertPool")
	}
}

func pemOf(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSystemCertsEnv reads a store laid out as distributions lay theirs
// out, through SSL_CERT_FILE and SSL_CERT_DIR as x509 honours them.
func TestSystemCertsEnv(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the store is files on Linux only")
	}
	a, b, c, d := newRoot(t, "Bundle Root"), newRoot(t, "Dir Root"), newRoot(t, "Second Dir Root"), newRoot(t, "Headers Root")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.crt")
	write(t, bundle, "# comment\n"+pemOf(a, b))
	certs := filepath.Join(dir, "certs")
	write(t, filepath.Join(dir, "share", "dir-root.crt"), pemOf(b))
	write(t, filepath.Join(certs, "second.pem"), pemOf(c))
	write(t, filepath.Join(certs, "notes.txt"), "not a certificate\n")
	write(t, filepath.Join(certs, "headers.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: d.Raw})))
	if err := os.Mkdir(filepath.Join(certs, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A distribution's links: the .pem name to the shipped file, and
	// c_rehash's hash name to the .pem name.
	if err := os.Symlink(filepath.Join(dir, "share", "dir-root.crt"), filepath.Join(certs, "dir-root.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("dir-root.pem", filepath.Join(certs, "1a2b3c4d.0")); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()

	tests := []struct {
		name, file, dirs string
		want             []*x509.Certificate
		err              string
	}{
		{"file and directory", bundle, certs, []*x509.Certificate{a, b, c}, ""},
		{"directory alone", filepath.Join(dir, "missing.crt"), certs, []*x509.Certificate{b, c}, ""},
		{"two directories", filepath.Join(dir, "missing.crt"), empty + ":" + certs, []*x509.Certificate{b, c}, ""},
		{"nothing there", filepath.Join(dir, "missing.crt"), empty, nil, ""},
		{"file is a directory", certs, empty, nil, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SSL_CERT_FILE", tt.file)
			t.Setenv("SSL_CERT_DIR", tt.dirs)
			got, ok, err := systemCerts()
			if !ok {
				t.Fatal("not read from files")
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d certificates, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Errorf("certificate %d is %s, want %s", i, got[i].Subject, tt.want[i].Subject)
				}
			}
		})
	}
}

// countingRead counts the reads a Bundle call makes.
func countingRead(n *atomic.Int32) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		n.Add(1)
		return os.ReadFile(path)
	}
}

func bundleVia(t *testing.T, path string, read func(string) ([]byte, error)) []Block {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Bundle(path, info, read)
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestBundleReadsOnce: a file is read once however many names reach it
// and however many readers ask at once, and again when it changes.
func TestBundleReadsOnce(t *testing.T) {
	t.Parallel()
	a, b := newRoot(t, "Once A"), newRoot(t, "Once B")
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.pem")
	write(t, path, pemOf(a))
	link := filepath.Join(dir, "link.pem")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			p := path
			if i%2 == 1 {
				p = link
			}
			if blocks := bundleVia(t, p, countingRead(&n)); len(blocks) != 1 {
				t.Errorf("%d blocks, want 1", len(blocks))
			}
		})
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Errorf("8 readers through 2 names read the file %d times, want 1", got)
	}
	write(t, path, pemOf(a, b))
	if blocks := bundleVia(t, link, countingRead(&n)); len(blocks) != 2 {
		t.Errorf("after the file changed: %d blocks, want 2", len(blocks))
	}
	if got := n.Load(); got != 2 {
		t.Errorf("a changed file was read %d times in all, want 2", got)
	}
}

// TestBundleFailureNotKept: a failed read is the caller's; the next
// caller reads with its own reader.
func TestBundleFailureNotKept(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bundle.pem")
	write(t, path, pemOf(newRoot(t, "Retry")))
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("refused by this reader")
	if _, err := Bundle(path, info, func(string) ([]byte, error) { return nil, refuse }); !errors.Is(err, refuse) {
		t.Fatalf("err = %v, want the reader's", err)
	}
	var n atomic.Int32
	if blocks := bundleVia(t, path, countingRead(&n)); len(blocks) != 1 || n.Load() != 1 {
		t.Errorf("after a failed read: %d blocks from %d reads, want 1 from 1", len(blocks), n.Load())
	}
}

// TestBlocks: each block keeps its type, the line of its BEGIN marker and
// whether it had headers; a certificate found in two files is parsed once.
func TestBlocks(t *testing.T) {
	t.Parallel()
	a, b := newRoot(t, "Lines A"), newRoot(t, "Lines B")
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}))
	withHeaders := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"X": "y"}, Bytes: b.Raw}))
	first := "# line 1\n# line 2\n" + pemOf(a) + "\n-----BEGIN garbage\n" + key + withHeaders
	dir := t.TempDir()
	write(t, filepath.Join(dir, "one.pem"), first)
	write(t, filepath.Join(dir, "two.pem"), "\n"+pemOf(a))
	blocks := bundleVia(t, filepath.Join(dir, "one.pem"), os.ReadFile)
	aLines := strings.Count(pemOf(a), "\n")
	want := []struct {
		typ     string
		line    int
		headers bool
	}{
		{"CERTIFICATE", 3, false},
		{"PRIVATE KEY", 3 + aLines + 1, false}, // the garbage BEGIN line is where pem.Decode resumed
		{"CERTIFICATE", 3 + aLines + 2 + strings.Count(key, "\n"), true},
	}
	if len(blocks) != len(want) {
		t.Fatalf("%d blocks, want %d", len(blocks), len(want))
	}
	for i, w := range want {
		if b := blocks[i]; b.Type != w.typ || b.Line != w.line || b.Headers != w.headers {
			t.Errorf("block %d = %s line %d headers %v, want %s line %d headers %v", i, b.Type, b.Line, b.Headers, w.typ, w.line, w.headers)
		}
	}
	other := bundleVia(t, filepath.Join(dir, "two.pem"), os.ReadFile)
	if len(other) != 1 || other[0].Line != 2 {
		t.Fatalf("two.pem: %+v", other)
	}
	c1, err1 := blocks[0].Cert()
	c2, err2 := other[0].Cert()
	c3, err3 := Parse(a.Raw)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if c1 != c2 || c2 != c3 || !c1.Equal(a) {
		t.Error("one certificate in two files was parsed more than once, or wrongly")
	}
}

// pemOnly is decodeBlocks as it was before its canonical fast path: every
// block through pem.Decode. The two must agree on any input.
func pemOnly(data []byte) []Block {
	var out []Block
	line, counted := 1, 0
	for rest := data; ; {
		start := bytes.Index(rest, []byte("-----BEGIN"))
		if start < 0 {
			return out
		}
		at := len(data) - len(rest) + start
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		line += bytes.Count(data[counted:at], []byte("\n"))
		counted = at
		out = append(out, Block{Type: block.Type, DER: block.Bytes, Sum: sha256.Sum256(block.Bytes), Line: line, Headers: len(block.Headers) > 0})
	}
}

func sameBlocks(a, b []Block) bool {
	return slices.EqualFunc(a, b, func(x, y Block) bool {
		return x.Type == y.Type && bytes.Equal(x.DER, y.DER) && x.Sum == y.Sum && x.Line == y.Line && x.Headers == y.Headers
	})
}

// FuzzBlocks: the fast path for canonical blocks decodes exactly what
// pem.Decode decodes, and skips exactly what it skips.
func FuzzBlocks(f *testing.F) {
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	headers := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"X": "y"}, Bytes: []byte("abc")})
	for _, seed := range []string{
		"", string(key), "# c\n" + string(key) + string(headers),
		"-----BEGIN A-----\nAQID\n-----END B-----\n" + string(key),
		"-----BEGIN A-----\r\nAQID\r\n-----END A-----\r\n",
		"-----BEGIN A-----\nAQ ID\n-----END A-----",
		"-----BEGIN A-----\n-----END A-----\n",
		"x-----BEGIN A-----\nAQID\n-----END A-----\n",
		"-----BEGIN A-----\nAQID\n-----END A----- \n",
		"-----BEGIN A-----\nAQI=\n-----END A-----\n-----BEGIN A-----\nAQ=D\n-----END A-----\n",
	} {
		f.Add([]byte(seed))
	}
	if data, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		f.Add(data[:min(len(data), 8<<10)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := decodeBlocks(data), pemOnly(data); !sameBlocks(got, want) {
			t.Errorf("decodeBlocks = %d blocks, pem.Decode gives %d (or they differ)", len(got), len(want))
		}
	})
}

// TestBlocksAsPEM runs the comparison over every store file of this
// machine, where the fast path is taken.
func TestBlocksAsPEM(t *testing.T) {
	t.Parallel()
	n := 0
	for _, dir := range append([]string{"/usr/share/ca-certificates/mozilla"}, CertDirs...) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			n++
			if got, want := decodeBlocks(data), pemOnly(data); !sameBlocks(got, want) {
				t.Errorf("%s: decodeBlocks and pem.Decode differ", e.Name())
			}
		}
	}
	if n == 0 {
		t.Skip("no store files here")
	}
}

// BenchmarkBlocks decodes this machine's bundle: the fast path, for text
// met for the first time and for text decoded before (another file with
// the same roots), against pem.Decode.
func BenchmarkBlocks(b *testing.B) {
	data, err := os.ReadFile(CertFiles[0])
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(int64(len(data)))
	b.Run("canonical, first reading", func(b *testing.B) {
		for b.Loop() {
			decodedMu.Lock()
			clear(decodedText)
			decodedMu.Unlock()
			decodeBlocks(data)
		}
	})
	b.Run("canonical, read before", func(b *testing.B) {
		decodeBlocks(data)
		for b.Loop() {
			decodeBlocks(data)
		}
	})
	b.Run("pem.Decode", func(b *testing.B) {
		for b.Loop() {
			pemOnly(data)
		}
	})
}

// TestDecodedBounded: the memory of decoded texts stays bounded however
// many distinct blocks pass, and what it forgets is decoded again, right.
func TestDecodedBounded(t *testing.T) {
	var all []byte
	var want [][]byte
	for i := range maxDecoded + 100 {
		der := []byte(fmt.Sprintf("block %d of a bundle no store has", i))
		want = append(want, der)
		all = append(all, pem.EncodeToMemory(&pem.Block{Type: "TEST", Bytes: der})...)
	}
	for range 2 {
		got := Blocks(all)
		if len(got) != len(want) {
			t.Fatalf("%d blocks, want %d", len(got), len(want))
		}
		for i, b := range got {
			if !bytes.Equal(b.DER, want[i]) || b.Sum != sha256.Sum256(want[i]) {
				t.Fatalf("block %d: %q", i, b.DER)
			}
		}
		decodedMu.Lock()
		n := len(decodedText)
		decodedMu.Unlock()
		if n > maxDecoded {
			t.Errorf("%d texts kept, want at most %d", n, maxDecoded)
		}
	}
}

// TestSameDirLink: c_rehash's hash links (to a name in the same directory)
// are skipped as x509 skips them; links elsewhere and files are not.
func TestSameDirLink(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	dir, other := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "Root.pem"), "x")
	write(t, filepath.Join(other, "Elsewhere.crt"), "x")
	for name, target := range map[string]string{
		"1a2b3c4d.0": "Root.pem", "5e6f7a8b.0": "./Root.pem", "Elsewhere.pem": filepath.Join(other, "Elsewhere.crt"), "dangling.0": "Missing.pem",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, e := range entries {
		if SameDirLink(dir, e) {
			skipped = append(skipped, e.Name())
		}
	}
	if want := []string{"1a2b3c4d.0", "dangling.0"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
}

// TestBlocksRewrapped: a block wrapped at other widths (Node writes 72
// columns, OpenSSL 64) is the same text to the memory of decoded blocks.
func TestBlocksRewrapped(t *testing.T) {
	der := []byte("a certificate's bytes, wrapped at two widths: " + strings.Repeat("x", 200))
	b64 := base64.StdEncoding.EncodeToString(der)
	wrap := func(width int) []byte {
		var b strings.Builder
		b.WriteString("-----BEGIN CERTIFICATE-----\n")
		for s := b64; len(s) > 0; {
			n := min(width, len(s))
			b.WriteString(s[:n] + "\n")
			s = s[n:]
		}
		b.WriteString("-----END CERTIFICATE-----\n")
		return []byte(b.String())
	}
	first := Blocks(wrap(64))
	decodedMu.Lock()
	n := len(decodedText)
	decodedMu.Unlock()
	second := Blocks(wrap(72))
	decodedMu.Lock()
	m := len(decodedText)
	decodedMu.Unlock()
	if len(first) != 1 || len(second) != 1 || !bytes.Equal(first[0].DER, der) || !bytes.Equal(second[0].DER, der) {
		t.Fatalf("decoded %v and %v", first, second)
	}
	if m != n {
		t.Errorf("the 72-column text was decoded again: %d texts kept, then %d", n, m)
	}
}
