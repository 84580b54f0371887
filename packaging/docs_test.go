package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// docs reads the installed man page as man-db does and completes
// `mitmwatch check --output ` with each shell's installed completion.
func (l *lifecycle) docs(t *testing.T) {
	page := l.r.path("/usr/share/man/man1/mitmwatch.1.gz")
	out, err := exec.Command("lexgrog", page).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"mitmwatch - find and name the middleboxes`) {
		t.Errorf("lexgrog (the whatis entry): %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	man := exec.Command("man", "-l", page)
	man.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "LC_ALL=C.UTF-8")
	man.Stdout, man.Stderr = &stdout, &stderr
	if err := man.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("man -l: %v\n%s", err, stderr.Bytes())
	}
	for _, want := range []string{"NAME", "SYNOPSIS", "COMMANDS", "check", "EXIT STATUS", "FILES", "mitmwatch " + version1} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the man page lacks %q:\n%s", want, stdout.String())
		}
	}

	// The binary comes from the root; the shells (but bash, which every
	// root has) from the host.
	path := "PATH=" + l.r.path("/usr/bin") + ":" + os.Getenv("PATH")
	home := "HOME=" + t.TempDir()
	for _, c := range []struct {
		shell string
		cmd   *exec.Cmd
	}{
		{"bash", exec.Command("chroot", l.r.dir, "/bin/bash", "-c", `
			. /usr/share/bash-completion/completions/mitmwatch
			COMP_WORDS=(mitmwatch check --output ""); COMP_CWORD=3
			_mitmwatch_bash_autocomplete
			printf '%s\n' "${COMPREPLY[@]}"`)},
		// Autoloaded from fpath, as compinit does: the first call must
		// complete. compadd and _files stand in for the completion system.
		{"zsh", exec.Command("zsh", "-f", "-c", `
			fpath=(`+l.r.path("/usr/share/zsh/vendor-completions")+` $fpath)
			autoload -Uz _mitmwatch
			compadd() { print -rl -- ${(P)${@[-1]}} }
			_files() { }
			words=(mitmwatch check --output ""); CURRENT=4
			_mitmwatch`)},
		{"fish", exec.Command("fish", "--no-config", "-c", `
			source `+l.r.path("/usr/share/fish/vendor_completions.d/mitmwatch.fish")+`
			complete -C "mitmwatch check --output "`)},
	} {
		c.cmd.Env = []string{path, home, "LC_ALL=C.UTF-8"}
		out, err := c.cmd.CombinedOutput()
		got := strings.Fields(string(out))
		if err != nil || !contains(got, "json") || !contains(got, "table") {
			t.Errorf("%s completion of `mitmwatch check --output `: %v\n%s", c.shell, err, out)
		}
	}
}
