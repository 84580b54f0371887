package audit

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gitListed renders settings as git lists them with --show-origin.
func gitListed(tr *tree, ss []gitSetting) []string {
	var out []string
	for _, s := range ss {
		v := s.key
		if s.hasValue {
			v += "=" + s.value
		}
		out = append(out, tr.rel(s.source+" "+v))
	}
	return out
}

// TestGitFilesAsGit: where the audit reads git's settings from the files
// alone, it gets what `git config --list --show-origin` gives, setting for
// setting and line for line; where git alone can resolve them, it asks
// git.
func TestGitFilesAsGit(t *testing.T) {
	t.Parallel()
	needBinary(t, "git")
	const sample = `# a comment
[http]
	sslVerify = false
	proxy = "http://proxy.lab.example:3128" ; trailing comment
[http "https://Git.Lab.example/"]
	sslCAInfo = /etc/ssl/corp.pem
[url "https://git.lab.example/"]
	insteadOf = git@git.lab.example:
[Core]
	AskPass
	Editor = "vi \
-n"
[section.Sub]
	key = "a\tb\\c"
`
	for _, c := range []struct {
		name     string
		setup    func(tr *tree)
		allUsers bool
		alone    bool // the files answer without git
	}{
		{"no config", func(*tree) {}, false, true},
		{"global", func(tr *tree) { tr.write(filepath.Join(tr.home, ".gitconfig"), sample) }, false, true},
		{"xdg and home", func(tr *tree) {
			tr.write(filepath.Join(tr.home, ".config", "git", "config"), "[http]\n\tsslVerify = true\n")
			tr.write(filepath.Join(tr.home, ".gitconfig"), sample)
		}, false, true},
		{"XDG_CONFIG_HOME", func(tr *tree) {
			tr.env["XDG_CONFIG_HOME"] = filepath.Join(tr.base, "xdg")
			tr.write(filepath.Join(tr.base, "xdg", "git", "config"), sample)
		}, false, true},
		{"GIT_CONFIG_GLOBAL", func(tr *tree) {
			tr.env["GIT_CONFIG_GLOBAL"] = tr.write(filepath.Join(tr.base, "other.cfg"), sample)
			tr.write(filepath.Join(tr.home, ".gitconfig"), "[http]\n\tsslVerify = true\n")
		}, false, true},
		{"includes", func(tr *tree) {
			tr.write(filepath.Join(tr.home, ".gitconfig"), "[include]\n\tpath = inc/one.cfg\n\tpath = ~/two.cfg\n\tpath = missing.cfg\n[http]\n\tsslVerify = true\n")
			tr.write(filepath.Join(tr.home, "inc", "one.cfg"), "[include]\n\tpath = nested.cfg\n[http]\n\tsslVerify = false\n")
			tr.write(filepath.Join(tr.home, "inc", "nested.cfg"), sample)
			tr.write(filepath.Join(tr.home, "two.cfg"), "[http]\n\tsslCAInfo = /nowhere.pem\n")
		}, false, true},
		{"repository", func(tr *tree) {
			gitInit(tr, filepath.Join(tr.home, "src"))
			tr.write(filepath.Join(tr.home, "src", ".git", "config"), sample)
			tr.write(filepath.Join(tr.home, ".gitconfig"), "[http]\n\tsslVerify = true\n")
		}, false, true},
		{"system file under Root", func(tr *tree) {
			tr.write(filepath.Join(tr.root, "etc", "gitconfig"), sample)
		}, true, true},
		{"the system file of this machine's git", func(tr *tree) {
			tr.root = "" // the real /etc/gitconfig, read only
			tr.write(filepath.Join(tr.home, ".gitconfig"), sample)
		}, true, distroGit(mustLookPath(t, "git"))},
		{"GIT_CONFIG_NOSYSTEM", func(tr *tree) {
			tr.env["GIT_CONFIG_NOSYSTEM"] = "1"
			tr.write(filepath.Join(tr.root, "etc", "gitconfig"), sample)
		}, true, true},
		// Git's to resolve.
		{"includeIf", func(tr *tree) {
			tr.write(filepath.Join(tr.home, ".gitconfig"), "[includeIf \"gitdir:~/src/\"]\n\tpath = work.cfg\n")
			tr.write(filepath.Join(tr.home, "work.cfg"), sample)
		}, false, false},
		{"settings in the environment", func(tr *tree) {
			tr.env["GIT_CONFIG_COUNT"] = "1"
			tr.env["GIT_CONFIG_KEY_0"] = "http.sslVerify"
			tr.env["GIT_CONFIG_VALUE_0"] = "false"
		}, false, false},
		{"worktree", func(tr *tree) {
			tr.write(filepath.Join(tr.proj, ".git"), "gitdir: "+filepath.Join(tr.base, "elsewhere")+"\n")
		}, false, false},
		{"another user's repository", func(tr *tree) {
			if os.Geteuid() != 0 {
				tr.t.Skip("needs root to give a repository away")
			}
			repo := filepath.Join(tr.home, "src")
			gitInit(tr, repo)
			tr.write(filepath.Join(repo, ".git", "config"), sample)
			if err := filepath.WalkDir(repo, func(path string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(path, 65534, 65534)
			}); err != nil {
				tr.t.Fatal(err)
			}
		}, false, false},
		{"a file git refuses", func(tr *tree) {
			tr.write(filepath.Join(tr.home, ".gitconfig"), "[http\n\tsslVerify = false\n")
		}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			c.setup(tr)
			opts := tr.options(c.allUsers)
			opts.Run, opts.Root = nil, tr.root
			a := newAuditor(opts)
			got, alone := a.gitFromFilesAlone()
			if alone != c.alone {
				t.Fatalf("read from the files alone: %v, want %v", alone, c.alone)
			}
			if !alone {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var p part
			want, ok := a.gitFromBinary(ctx, &p)
			if !ok || len(p.warnings) > 0 {
				t.Fatalf("git config: %v", p.warnings)
			}
			if diff := cmp.Diff(gitListed(tr, want), gitListed(tr, got)); diff != "" {
				t.Errorf("settings (-git +files):\n%s", diff)
			}
		})
	}
}

// gitInit makes dir a repository, as git init does.
func gitInit(tr *tree, dir string) {
	tr.t.Helper()
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil {
		tr.t.Fatal(fmt.Errorf("git init: %v: %s", err, out))
	}
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return p
}
