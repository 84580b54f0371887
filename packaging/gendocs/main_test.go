package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kingpinMan is the shape of kingpin's --help-man output.
const kingpinMan = `.TH mitmwatch 1  ""
.SH "NAME"
mitmwatch
.SH "SYNOPSIS"
.TP
\fBmitmwatch [<flags>] <command> [<args> ...]\fR

.SH "DESCRIPTION"
Find and name the middleboxes.
.SH "OPTIONS"
.TP
\fB-h, --help\fR
Show context-sensitive help (also try --help-long and --help-man).
.SH "COMMANDS"
.SS
\fBcheck [<flags>]\fR
.PP
Probe every target; a path like C:\tmp stays literal.
.TP
\fB--web.config.file=""\fR
See: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
.TP
\fB--dot\fR
.starts with a dot
`

func TestManPage(t *testing.T) {
	got, err := manPage([]byte(kingpinMan), "v1.2.0", "2025-11-28")
	if err != nil {
		t.Fatal(err)
	}
	want := `.TH MITMWATCH 1 "2025-11-28" "mitmwatch v1.2.0" "User Commands"
.SH "NAME"
mitmwatch \- find and name the middleboxes between a build machine and its package registries
.SH "SYNOPSIS"
.TP
\fBmitmwatch [<flags>] <command> [<args> ...]\fR

.SH "DESCRIPTION"
Find and name the middleboxes.
.SH "OPTIONS"
.TP
\fB\-h, \-\-help\fR
Show context\-sensitive help (also try \-\-help\-long and \-\-help\-man).
.SH "COMMANDS"
.SS
\fBcheck [<flags>]\fR
.PP
Probe every target; a path like C:\etmp stays literal.
.TP
\fB\-\-web.config.file=""\fR
See: https://github.com/\:prometheus/\:exporter\-toolkit/\:blob/\:master/\:docs/\:web\-configuration.md
.TP
\fB\-\-dot\fR
\&.starts with a dot
` + sections
	if d := cmp.Diff(want, string(got)); d != "" {
		t.Errorf("manPage (-want +got):\n%s", d)
	}
}

func TestManPageRejectsOtherTemplates(t *testing.T) {
	if _, err := manPage([]byte("usage: mitmwatch\n"), "v1", "2025-11-28"); err == nil {
		t.Error("no error for output without .TH and NAME")
	}
}

const kingpinZsh = `#compdef mitmwatch

_mitmwatch() {
    local matches=($(${words[1]} --completion-bash "${(@)words[2,$CURRENT]}"))
    compadd -a matches

    if [[ $compstate[nmatches] -eq 0 && $words[$CURRENT] != -* ]]; then
        _files
    fi
}

if [[ "$(basename -- ${(%):-%x})" != "_mitmwatch" ]]; then
    compdef _mitmwatch mitmwatch
fi
`

func TestZshCompletion(t *testing.T) {
	got, err := zshCompletion([]byte(kingpinZsh))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, []byte("#compdef mitmwatch\n")) || !bytes.HasSuffix(got, []byte(zshFixedTail)) || bytes.Contains(got, []byte("basename")) {
		t.Errorf("zshCompletion:\n%s", got)
	}
	if _, err := zshCompletion([]byte("#compdef mitmwatch\n")); err == nil {
		t.Error("no error for a script that does not end as kingpin's")
	}
}

func TestGzippedIsReproducible(t *testing.T) {
	a, b := gzipped([]byte("page")), gzipped([]byte("page"))
	if !bytes.Equal(a, b) {
		t.Error("two compressions of the same page differ")
	}
	r, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "" || !r.ModTime.IsZero() {
		t.Errorf("header carries name %q, time %v", r.Name, r.ModTime)
	}
	if page, _ := io.ReadAll(r); string(page) != "page" {
		t.Errorf("round trip: %q", page)
	}
}

// TestRun generates from the real CLI: kingpin's templates must still
// match what manPage and zshCompletion expect.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mitmwatch")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mitmwatch")
	build := exec.Command("go", "build", "-o", bin, "github.com/mitmwatch/mitmwatch/cmd/mitmwatch")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "docs")
	if err := run(bin, "v1.2.0", "2025-11-28", out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mitmwatch.1.gz", "mitmwatch.bash", "_mitmwatch"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "mitmwatch.bash")); !strings.Contains(string(b), "complete -F _mitmwatch_bash_autocomplete") {
		t.Errorf("bash completion:\n%s", b)
	}
}

// The man page's exit status 1 names every cause check exits 1 for: a
// detection, a critical toolchain setting, and an interceptor that
// re-signs invalid certificates even when its CA is approved.
func TestManPageExitStatus(t *testing.T) {
	got, err := manPage([]byte(kingpinMan), "v1.2.0", "2025-11-28")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".B 1\nsomething was detected", "critical setting", "re-signs invalid certificates"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("man page lacks %q", want)
		}
	}
}
