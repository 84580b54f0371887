package toolchain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitmwatch/mitmwatch/atomicfile"
)

// Answers that depend only on a tool's installation — its version, the
// roots Node bundles, where pip's certifi lives — cost a process start
// each (tens to hundreds of milliseconds for Node and Python) and change
// only when the tool does. Cached keeps them in one file between runs.
const (
	answersName       = "tool-answers.json"
	maxAnswers        = 64
	maxAnswersSize    = 4 << 20
	DefaultAnswersTTL = 24 * time.Hour
)

// answer is one command's output, keyed by what ran and the binary's stamp.
type answer struct {
	Key    string    `json:"key"`
	At     time.Time `json:"at"`
	Output []byte    `json:"output"`
	Err    string    `json:"error,omitempty"` // the command failed with this
}

// failureTTL bounds how long a failure is kept: a tool that cannot answer
// (a rustup proxy with no default toolchain) may be set up any minute,
// but asking it at every check costs a process start each time.
const failureTTL = 10 * time.Minute

// Cached wraps run so that a command's output (or failure, for a shorter
// while) is kept in file
// and reused while the binary that ran it is unchanged (resolved path, size
// and modification time), the variables named env hold the same values in
// this process's environment, and the answer is younger than ttl, which bounds
// how long an upgrade of something beside the binary (a Python package)
// can go unseen. Only commands whose output depends on the installation
// alone may go through it: not one that reads the user's configuration.
// A missing or corrupt file is empty; one that cannot be written costs
// the next run the command, nothing else.
func Cached(run Runner, file string, ttl time.Duration, env ...string) Runner {
	c := &answers{run: run, file: file, ttl: ttl, env: env}
	return c.Run
}

type answers struct {
	run  Runner
	file string
	ttl  time.Duration
	env  []string

	mu   sync.Mutex
	read bool
	list []answer
}

// Run answers from the file when it can, else runs the command.
func (c *answers) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	key, ok := answerKey(name, args, c.env)
	if !ok {
		return c.run(ctx, name, args...)
	}
	c.mu.Lock()
	c.load()
	for _, a := range c.list {
		if a.Key != key {
			continue
		}
		if a.Err != "" && time.Since(a.At) < min(c.ttl, failureTTL) {
			c.mu.Unlock()
			return nil, fmt.Errorf("%s (asked %s ago)", a.Err, time.Since(a.At).Round(time.Second))
		}
		if a.Err == "" && time.Since(a.At) < c.ttl {
			c.mu.Unlock()
			return slices.Clone(a.Output), nil
		}
	}
	c.mu.Unlock()
	out, err := c.run(ctx, name, args...)
	if errors.Is(err, exec.ErrNotFound) || ctx.Err() != nil {
		return out, err // not an answer of the installation
	}
	a := answer{Key: key, At: time.Now(), Output: slices.Clone(out)}
	if err != nil {
		a = answer{Key: key, At: a.At, Err: err.Error()}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = slices.DeleteFunc(c.list, func(a answer) bool { return a.Key == key })
	c.list = append([]answer{a}, c.list...)
	if len(c.list) > maxAnswers {
		c.list = c.list[:maxAnswers]
	}
	if data, err := json.Marshal(c.list); err == nil && os.MkdirAll(filepath.Dir(c.file), 0o755) == nil {
		atomicfile.Write(c.file, data, 0o644)
	}
	return out, err
}

// load reads the file once; a missing, unreadable or corrupt one is empty.
func (c *answers) load() {
	if c.read {
		return
	}
	c.read = true
	f, err := os.Open(c.file)
	if err != nil {
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAnswersSize+1))
	if err != nil || len(data) > maxAnswersSize || json.Unmarshal(data, &c.list) != nil {
		c.list = nil
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

// AnswersFile is where Cached keeps answers by default: the user's cache
// directory; "" when there is none (a service without a home).
func AnswersFile() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "mitmwatch", answersName)
}
