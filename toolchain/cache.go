package toolchain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// Answers that depend only on a tool's installation — its version, the
// roots Node bundles, where pip's certifi lives — cost a process start
// each (tens to hundreds of milliseconds for Node and Python) and change
// only when the tool does. Answers keeps them between runs, one file per
// answer: a check reads the few it needs, raw, and never decodes the
// others (Node's roots are ~200 KB of PEM).
const (
	answersName       = "tool-answers"
	maxAnswers        = 64
	maxAnswerSize     = 4 << 20
	DefaultAnswersTTL = 24 * time.Hour
)

// answerMeta is the first line of an answer's file; the command's output
// follows it as it was printed.
type answerMeta struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
	Err string    `json:"error,omitempty"` // the command failed with this
	// Sum is the hex SHA-256 of the output: Output gives it without
	// reading the output, and a damaged output is told by it.
	Sum string `json:"sum,omitempty"`
}

// failureTTL bounds how long a failure is kept: a tool that cannot answer
// (a rustup proxy with no default toolchain) may be set up any minute,
// but asking it at every check costs a process start each time.
const failureTTL = 10 * time.Minute

// NewAnswers wraps run so that a command's output (or failure, for a
// shorter while) is kept in dir and reused while the binary that ran it
// is unchanged (resolved path, size and modification time), the
// variables named env hold the same values in this process's
// environment, and the answer is younger than ttl, which bounds how long
// an upgrade of something beside the binary (a Python package) can go
// unseen. Only commands whose output depends on the installation alone
// may go through it: not one that reads the user's configuration. A
// missing or corrupt answer is none; one that cannot be written costs
// the next run the command, nothing else.
func NewAnswers(run Runner, dir string, ttl time.Duration, env ...string) *Answers {
	return &Answers{run: run, dir: dir, ttl: ttl, env: env}
}

// Answers keeps tools' answers (NewAnswers).
type Answers struct {
	run Runner
	dir string
	ttl time.Duration
	env []string
}

// Output is a command's output: its first line, and the whole of it
// unless the caller knows it by its digest. Node's answer is a line about
// Node, then ~200 KB of roots whose decoding trust's snapshot keeps by
// their digest: a check that has them there reads the line alone.
type Output struct {
	First []byte // the first line, without its end
	// Whole is the output, unless Known.
	Whole []byte
	// Known says the caller's known knew an output of this Sum and Size,
	// as an answer's file gives them: its rest was not read, so damage to
	// it that keeps its size goes unseen until it is read whole.
	Known bool
	Sum   [32]byte // SHA-256 of the output
	Size  int
}

// OutputOf is the Output of out, read whole.
func OutputOf(out []byte) Output {
	first, _, _ := bytes.Cut(out, []byte("\n"))
	return Output{First: first, Whole: out, Sum: sha256.Sum256(out), Size: len(out)}
}

// Run answers from the answer's file when it can, else runs the command.
func (c *Answers) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	o, err := c.Output(ctx, nil, name, args...)
	return o.Whole, err
}

// Output is Run, leaving out the output's whole where known (when not
// nil) says the caller knows an output of that digest and size, and the
// answer's file has them: then only the file's first lines are read.
func (c *Answers) Output(ctx context.Context, known func(sum [32]byte, size int) bool, name string, args ...string) (Output, error) {
	key, ok := answerKey(name, args, c.env)
	if !ok {
		out, err := c.run(ctx, name, args...)
		return OutputOf(out), err
	}
	path := filepath.Join(c.dir, answerFile(key))
	if meta, out, ok := readAnswer(path, key, known); ok {
		age := time.Since(meta.At)
		if meta.Err != "" && age >= 0 && age < min(c.ttl, failureTTL) {
			return Output{}, fmt.Errorf("%s (asked %s ago)", meta.Err, age.Round(time.Second))
		}
		if meta.Err == "" && age >= 0 && age < c.ttl {
			return out, nil
		}
	}
	out, err := c.run(ctx, name, args...)
	if errors.Is(err, exec.ErrNotFound) || ctx.Err() != nil {
		return OutputOf(out), err // not an answer of the installation
	}
	o := OutputOf(out)
	meta := answerMeta{Key: key, At: time.Now(), Sum: hex.EncodeToString(o.Sum[:])}
	body := out
	if err != nil {
		meta.Err, meta.Sum, body = err.Error(), "", nil
	}
	c.write(path, meta, body)
	return o, err
}

// answerFile names a key's file: its hash, as keys hold paths.
func answerFile(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// readAnswer reads one answer; false when there is none for key (missing,
// corrupt, too large, or another key's). Where the answer's file gives the
// output's digest and known knows it, the output's first line alone is
// read.
func readAnswer(path, key string, known func(sum [32]byte, size int) bool) (answerMeta, Output, bool) {
	var meta answerMeta
	// A regular file only: a FIFO or device put in its place would hang
	// or stream (Lstat first, as opening a FIFO waits for a writer).
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return meta, Output{}, false
	}
	f, err := os.Open(path)
	if err != nil {
		return meta, Output{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxAnswerSize {
		return meta, Output{}, false
	}
	// The first lines through a small buffer: Node's answer is ~200 KB,
	// which would otherwise be read into as many fresh pages of memory.
	r := bufio.NewReaderSize(io.LimitReader(f, maxAnswerSize+1), answerBuffer)
	head, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(head, &meta) != nil || meta.Key != key {
		return meta, Output{}, false
	}
	size := int(fi.Size()) - len(head) // as stat'ed; a file grown since is read whole
	var sum [32]byte
	if meta.Sum != "" {
		if len(meta.Sum) != hex.EncodedLen(len(sum)) {
			return meta, Output{}, false
		}
		if _, err := hex.Decode(sum[:], []byte(meta.Sum)); err != nil {
			return meta, Output{}, false
		}
		if size >= 0 && known != nil && known(sum, size) {
			first, err := r.ReadBytes('\n')
			if err != nil && err != io.EOF {
				return meta, Output{}, false
			}
			return meta, Output{First: bytes.TrimSuffix(first, []byte("\n")), Sum: sum, Size: size, Known: true}, true
		}
	}
	// Sized from the stat: io.ReadAll would reach ~200 KB through a dozen
	// zeroed and copied buffers. The reader hands a large read straight
	// to the file.
	var buf bytes.Buffer
	buf.Grow(max(size, 0) + bytes.MinRead)
	if _, err := buf.ReadFrom(r); err != nil || len(head)+buf.Len() > maxAnswerSize {
		return meta, Output{}, false
	}
	o := OutputOf(buf.Bytes())
	if meta.Sum != "" && o.Sum != sum {
		return meta, Output{}, false // damaged since it was written
	}
	return meta, o, true
}

// answerBuffer is readAnswer's buffer: an answer's key (a few hundred
// bytes, more with a long PATH) and a tool's line about itself.
const answerBuffer = 4 << 10

// write keeps an answer, then drops the oldest beyond maxAnswers (tools
// upgraded or removed leave theirs behind).
func (c *Answers) write(path string, meta answerMeta, out []byte) {
	head, err := json.Marshal(meta)
	if err != nil || len(head)+1+len(out) > maxAnswerSize || os.MkdirAll(c.dir, 0o755) != nil {
		return
	}
	if atomicfile.Write(path, slices.Concat(head, []byte("\n"), out), 0o644) != nil {
		return
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil || len(entries) <= maxAnswers {
		return
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var all []aged
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			all = append(all, aged{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(all, func(a, b aged) int { return b.mod.Compare(a.mod) })
	for _, a := range all[min(maxAnswers, len(all)):] {
		os.Remove(filepath.Join(c.dir, a.name))
	}
}

// answerKey names a command by its arguments and its binary's stamp; false
// when the binary cannot be found or stated (then nothing is cached).
func answerKey(name string, args, env []string) (string, bool) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", false
	}
	s, err := stampOf(bin)
	if err != nil {
		return "", false
	}
	vals := make([]string, len(env))
	for i, k := range env {
		vals[i] = k + "=" + os.Getenv(k)
	}
	b, err := json.Marshal(struct {
		Stamp npmStamp
		Args  string
		Env   []string
	}{s, strings.Join(args, "\x00"), vals})
	return string(b), err == nil
}

// AnswersDir is where Answers keeps them by default: in the user's cache
// directory; "" when there is none (a service without a home).
func AnswersDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "mitmwatch", answersName)
}
