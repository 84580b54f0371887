package toolchain

import (
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
// only when the tool does. Cached keeps them between runs, one file per
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
}

// failureTTL bounds how long a failure is kept: a tool that cannot answer
// (a rustup proxy with no default toolchain) may be set up any minute,
// but asking it at every check costs a process start each time.
const failureTTL = 10 * time.Minute

// Cached wraps run so that a command's output (or failure, for a shorter
// while) is kept in dir and reused while the binary that ran it is
// unchanged (resolved path, size and modification time), the variables
// named env hold the same values in this process's environment, and the
// answer is younger than ttl, which bounds how long an upgrade of
// something beside the binary (a Python package) can go unseen. Only
// commands whose output depends on the installation alone may go through
// it: not one that reads the user's configuration. A missing or corrupt
// answer is none; one that cannot be written costs the next run the
// command, nothing else.
func Cached(run Runner, dir string, ttl time.Duration, env ...string) Runner {
	c := &answers{run: run, dir: dir, ttl: ttl, env: env}
	return c.Run
}

type answers struct {
	run Runner
	dir string
	ttl time.Duration
	env []string
}

// Run answers from the answer's file when it can, else runs the command.
func (c *answers) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	key, ok := answerKey(name, args, c.env)
	if !ok {
		return c.run(ctx, name, args...)
	}
	path := filepath.Join(c.dir, answerFile(key))
	if meta, out, ok := readAnswer(path, key); ok {
		age := time.Since(meta.At)
		if meta.Err != "" && age >= 0 && age < min(c.ttl, failureTTL) {
			return nil, fmt.Errorf("%s (asked %s ago)", meta.Err, age.Round(time.Second))
		}
		if meta.Err == "" && age >= 0 && age < c.ttl {
			return out, nil
		}
	}
	out, err := c.run(ctx, name, args...)
	if errors.Is(err, exec.ErrNotFound) || ctx.Err() != nil {
		return out, err // not an answer of the installation
	}
	meta := answerMeta{Key: key, At: time.Now()}
	body := out
	if err != nil {
		meta.Err, body = err.Error(), nil
	}
	c.write(path, meta, body)
	return out, err
}

// answerFile names a key's file: its hash, as keys hold paths.
func answerFile(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// readAnswer reads one answer; false when there is none for key (missing,
// corrupt, too large, or another key's).
func readAnswer(path, key string) (answerMeta, []byte, bool) {
	var meta answerMeta
	f, err := os.Open(path)
	if err != nil {
		return meta, nil, false
	}
	defer f.Close()
	// Sized from the stat: Node's answer is ~200 KB, which io.ReadAll
	// would reach through a dozen zeroed and copied buffers.
	var buf bytes.Buffer
	if fi, err := f.Stat(); err == nil && fi.Size() <= maxAnswerSize {
		buf.Grow(int(fi.Size()) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(f, maxAnswerSize+1)); err != nil || buf.Len() > maxAnswerSize {
		return meta, nil, false
	}
	data := buf.Bytes()
	head, out, ok := bytes.Cut(data, []byte("\n"))
	if !ok || json.Unmarshal(head, &meta) != nil || meta.Key != key {
		return meta, nil, false
	}
	return meta, out, true
}

// write keeps an answer, then drops the oldest beyond maxAnswers (tools
// upgraded or removed leave theirs behind).
func (c *answers) write(path string, meta answerMeta, out []byte) {
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

// AnswersDir is where Cached keeps answers by default: in the user's cache
// directory; "" when there is none (a service without a home).
func AnswersDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "mitmwatch", answersName)
}
