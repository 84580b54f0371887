package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/mitmwatch/mitmwatch/toolchain"
)

// maxConfigSize bounds a configuration file read: they are a few hundred
// bytes, and a path that names a huge file or a device must fail fast.
const maxConfigSize = 1 << 20

// readFile reads a file of at most limit bytes. A file that does not exist
// gives ok false and no error: most tools are not configured at all.
// Anything else that keeps it from being read (a directory where a file
// belongs, a symlink loop, a dangling link, permissions, a FIFO) is an
// error naming the path, for a warning.
func readFile(path string, limit int64) (data []byte, ok bool, err error) {
	// Stat before opening: opening a FIFO would block.
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := os.Lstat(path); lerr == nil {
				return nil, false, fmt.Errorf("%s: dangling symbolic link", path)
			}
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	switch {
	case info.IsDir():
		return nil, false, fmt.Errorf("%s: is a directory, not a file", path)
	case !info.Mode().IsRegular():
		return nil, false, fmt.Errorf("%s: not a regular file", path)
	case info.Size() > limit:
		return nil, false, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	// Sized by the stat: io.ReadAll's doubling would copy a bundle of
	// hundreds of kilobytes a dozen times.
	buf := bytes.NewBuffer(make([]byte, 0, min(info.Size(), limit)+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(f, limit+1))
	data = buf.Bytes()
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return nil, false, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, true, nil
}

// load reads a configuration file, turning a failure into a warning.
func (p *part) load(path string) ([]byte, bool) {
	data, ok, err := readFile(path, maxConfigSize)
	if err != nil {
		p.warn(err.Error())
	}
	return data, ok
}

// unwrapPath drops the *fs.PathError layer, whose message repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isFile and isDir report what a path is, following links; a path that
// cannot be examined is neither.
func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// pathProblem says why a path a setting names cannot serve as a file
// (dir false) or a directory (dir true); "" when it can.
func pathProblem(path string, dir bool) string {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case err != nil:
		return unwrapPath(err).Error()
	case dir && !info.IsDir():
		return "is not a directory"
	case !dir && info.IsDir():
		return "is a directory"
	}
	return ""
}

// redacted replaces a secret in a reported value.
const redacted = "REDACTED"

// userinfoRE matches the userinfo of a URL anywhere in a value, up to the
// last @ of the authority.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@`)

// redactURLs hides the user names and passwords of every URL in s: a user
// name is often a token.
func redactURLs(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}"+redacted+"@")
}

// redactProxy hides the credentials of a proxy setting, which curl and
// npm also accept without a scheme (user:pass@proxy:3128).
func redactProxy(s string) string {
	if !strings.Contains(s, "://") {
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			return redacted + s[i:]
		}
	}
	return redactURLs(s)
}

// hasCredentials reports whether a URL-ish value carries a user name or
// password.
func hasCredentials(s string) bool {
	return redactProxy(s) != s
}

// secretKey reports whether a setting's name says its value is a secret
// (npm's _auth, //host/:_authToken, _password; tokens; passwords).
func secretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"_auth", "token", "password", "passwd", "secret", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// urlHost returns the host a tool reaches for an http or https URL, with
// its scheme. A "sparse+" or "registry+" prefix (Cargo) is dropped.
// Validation is toolchain.ParseRegistry's, so hosts found here and there
// agree.
func urlHost(raw, setting, source string) (Host, bool) {
	raw = strings.TrimSpace(raw)
	for _, prefix := range []string{"sparse+", "registry+"} {
		raw = strings.TrimPrefix(raw, prefix)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Host{}, false
	}
	hs := toolchain.ParseRegistry(raw, "")
	if len(hs) == 0 {
		return Host{}, false
	}
	return Host{Host: hs[0].Host, Port: hs[0].Port, Scheme: strings.ToLower(u.Scheme), Source: setting + " (" + source + ")"}, true
}

// plainHTTP reports whether a URL fetches over plain http.
func plainHTTP(raw string) bool {
	raw = strings.TrimSpace(raw)
	for _, prefix := range []string{"sparse+", "registry+"} {
		raw = strings.TrimPrefix(raw, prefix)
	}
	return len(raw) >= 7 && strings.EqualFold(raw[:7], "http://")
}

// hostPort returns a Host for a bare "host" or "host:port" (pip's
// trusted-host, Docker's insecure-registries), taken as https.
func hostPort(v, setting, source string) (Host, bool) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "://") {
		return urlHost(v, setting, source)
	}
	if strings.Contains(v, "/") { // a CIDR or a path: not one host
		return Host{}, false
	}
	hs := toolchain.ParseRegistry("https://"+v, "")
	if len(hs) == 0 {
		return Host{}, false
	}
	return Host{Host: hs[0].Host, Port: hs[0].Port, Scheme: "https", Source: setting + " (" + source + ")"}, true
}

// falsy reports whether a boolean setting is off, the way the tools that
// write "false", "no", "off" or "0" read it.
func falsy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "no", "off", "0":
		return true
	}
	return false
}

// quote renders a value for a sentence.
func quote(s string) string { return strconv.Quote(s) }
