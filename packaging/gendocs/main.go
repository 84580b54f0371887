// Command gendocs writes the files the packages ship beside the binary that
// are generated from the CLI's own help, so they never fall behind it: the
// man page (kingpin's --help-man, made a proper man page) and the bash and
// zsh completions (kingpin's --completion-script-*; the zsh one fixed so the
// first Tab works when it is autoloaded from fpath). The fish completion is
// a static file, packaging/completions/mitmwatch.fish, that asks the binary
// in the same way.
//
// It runs a mitmwatch built for this machine; `make` calls it:
//
//	go run ./packaging/gendocs -bin dist/.build/mitmwatch -version v1.2.0 -date 2025-11-28 -out dist/.build/docs
//
// Every output is a pure function of the binary's help and the flags: the
// man page is gzipped without a name or a time stamp, so a rebuild of the
// same commit gives the same bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	bin := flag.String("bin", "", "mitmwatch binary that runs on this machine")
	version := flag.String("version", "", "version shown in the man page's footer")
	date := flag.String("date", "", "date shown in the man page's footer (YYYY-MM-DD, the commit's)")
	out := flag.String("out", "", "directory to write mitmwatch.1.gz, mitmwatch.bash and _mitmwatch to")
	flag.Parse()
	if *bin == "" || *version == "" || *date == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *version, *date, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(bin, version, date, out string) error {
	help := func(flag string) ([]byte, error) {
		b, err := exec.Command(bin, flag).Output()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", bin, flag, err)
		}
		return b, nil
	}
	troff, err := help("--help-man")
	if err != nil {
		return err
	}
	page, err := manPage(troff, version, date)
	if err != nil {
		return err
	}
	bash, err := help("--completion-script-bash")
	if err != nil {
		return err
	}
	zsh, err := help("--completion-script-zsh")
	if err != nil {
		return err
	}
	if zsh, err = zshCompletion(zsh); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		"mitmwatch.1.gz": gzipped(page),
		"mitmwatch.bash": bash,
		"_mitmwatch":     zsh,
	} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// name is the whatis line: `man -k middlebox` finds mitmwatch by it.
const name = `mitmwatch \- find and name the middleboxes between a build machine and its package registries`

// sections follow kingpin's COMMANDS: what a man page reader looks for that
// --help does not say. They describe the packaged layout.
const sections = `.SH "EXIT STATUS"
For \fBcheck\fR, \fBpcap\fR and \fBsniff\fR:
.TP
.B 0
every target is ok or inspected;
.TP
.B 1
something was detected (or the toolchain audit found a critical setting, or an interceptor, approved or not, re-signs invalid certificates);
.TP
.B 2
usage or configuration error;
.TP
.B 3
inconclusive: some targets unreachable, nothing detected.
.SH "ENVIRONMENT"
.TP
.B MITMWATCH_CONFIG
rules.yaml to use when \fB\-\-config\fR is not given.
.TP
.B HTTPS_PROXY, https_proxy, NO_PROXY
\fBcheck\fR probes through the proxy, with CONNECT, as build tools do; the report says which path it probed.
.TP
.B SSL_CERT_FILE, SSL_CERT_DIR
the system trust store, as Go reads it.
.TP
.B NO_COLOR
never colour the table output.
.SH "FILES"
.TP
.I /etc/mitmwatch/rules.yaml
the configuration, then \fI$XDG_CONFIG_HOME/mitmwatch/rules.yaml\fR; without either, the default embedded in the binary.
.TP
.I /var/lib/mitmwatch
the state of \fBmitmwatch run\fR: the last results, \fIbaseline.json\fR and \fIranges.json\fR.
.TP
.I /usr/lib/systemd/system/mitmwatch.service
the service; not enabled by the package: \fBsystemctl enable \-\-now mitmwatch\fR.
.TP
.I /usr/share/mitmwatch/capture.conf
the drop\-in that grants passive capture CAP_NET_RAW; install it as \fI/etc/systemd/system/mitmwatch.service.d/capture.conf\fR.
.TP
.I /usr/share/mitmwatch/prometheus/mitmwatch\-alerts.yml
Prometheus alerting rules.
.TP
.I /usr/share/mitmwatch/grafana/mitmwatch\-dashboard.json
Grafana fleet dashboard.
.SH "SEE ALSO"
.BR systemctl (1),
.BR systemd.exec (5)
.PP
https://github.com/mitmwatch/mitmwatch
`

var (
	thLine    = regexp.MustCompile(`(?m)\A\.TH .*\n`)
	nameBlock = regexp.MustCompile(`(?m)^\.SH "NAME"\n.*\n`)
	request   = regexp.MustCompile(`^\.(TH|SH|SS|TP|PP)( |$)`)
)

// manPage turns kingpin's --help-man output into a man page: a .TH with the
// date, version and manual name, a NAME line that whatis can index, text
// escaped for troff (kingpin copies help strings verbatim, so a "\" or a
// leading "." would be read as troff, and "-" should be "\-" in options),
// and the sections above.
func manPage(troff []byte, version, date string) ([]byte, error) {
	s := string(troff)
	if !thLine.MatchString(s) || !nameBlock.MatchString(s) {
		return nil, fmt.Errorf("--help-man output has no .TH or NAME section: has kingpin's template changed?")
	}
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case request.MatchString(line):
		case strings.HasPrefix(line, `\fB`) && strings.HasSuffix(line, `\fR`):
			// an option or command heading: kingpin's own bold markup
			inner := strings.TrimSuffix(strings.TrimPrefix(line, `\fB`), `\fR`)
			line = `\fB` + escape(inner) + `\fR`
		default:
			line = breakURLs(escape(line))
			if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
				line = `\&` + line
			}
		}
		b.WriteString(line + "\n")
	}
	s = b.String()
	s = thLine.ReplaceAllLiteralString(s, fmt.Sprintf(".TH MITMWATCH 1 %q %q \"User Commands\"\n", date, "mitmwatch "+version))
	s = nameBlock.ReplaceAllLiteralString(s, ".SH \"NAME\"\n"+name+"\n")
	return []byte(strings.TrimRight(s, "\n") + "\n" + sections), nil
}

// escape makes text literal for troff: backslashes and minus signs.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

var url = regexp.MustCompile(`https?://\S+`)

// breakURLs lets troff break a long URL after its slashes instead of
// warning that it cannot fit the line.
func breakURLs(s string) string {
	return url.ReplaceAllStringFunc(s, func(u string) string {
		scheme, rest, _ := strings.Cut(u, "://")
		return scheme + "://" + strings.ReplaceAll(rest, "/", `/\:`)
	})
}

// zshTail is how kingpin's zsh script ends: it registers the function when
// the file is sourced but, autoloaded from fpath (where packages put it),
// only defines it, so the first Tab of every shell completes nothing.
var zshTail = regexp.MustCompile(`(?s)\nif \[\[ "\$\(basename -- \$\{\(%\):-%x\}\)" != "_mitmwatch" \]\]; then\n\s*compdef _mitmwatch mitmwatch\nfi\n*\z`)

const zshFixedTail = `
# Autoloaded from fpath (as packaged): complete now. Sourced: register.
if [[ "$funcstack[1]" == "_mitmwatch" ]]; then
    _mitmwatch "$@"
else
    compdef _mitmwatch mitmwatch
fi
`

func zshCompletion(script []byte) ([]byte, error) {
	if !zshTail.Match(script) {
		return nil, fmt.Errorf("--completion-script-zsh does not end as expected: has kingpin's template changed?\n%s", script)
	}
	return zshTail.ReplaceAllLiteral(script, []byte(zshFixedTail)), nil
}

// gzipped compresses b with no name and no time stamp in the header, as
// `gzip -n` does, so the bytes depend on b alone.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
