package audit

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSettings: the values that bear on each tool's TLS are recorded with
// their source, secrets are not, and URLs lose their credentials.
func TestSettings(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	npmrc := tr.write(filepath.Join(tr.home, ".npmrc"),
		"cafile=/corp/ca.pem\nstrict-ssl=true\n//registry.corp.example/:_authToken=s3cret\nhttps-proxy=http://alice:pw@proxy.corp.example:3128\n")
	gitconfig := tr.write(filepath.Join(tr.home, ".gitconfig"),
		"[http \"https://git.corp.example/\"]\n\tsslCAInfo = /corp/ca.pem\n")
	pipconf := tr.write(filepath.Join(tr.home, ".config", "pip", "pip.conf"),
		"[global]\ncert = /corp/bundle.pem\nindex-url = https://bob:pw@pypi.corp.example/simple/\n")
	cargo := tr.write(filepath.Join(tr.home, ".cargo", "config.toml"), "[http]\ncainfo = \"/corp/bundle.pem\"\n")
	daemon := tr.write(filepath.Join(tr.root, "etc", "docker", "daemon.json"), "{\"insecure-registries\": [\"registry.corp.example:5000\"]}\n")
	tr.env["GOINSECURE"] = "git.corp.example"
	tr.env["PIP_CERT"] = "/corp/pip.pem"

	var got []string
	for _, s := range tr.audit(true).Settings {
		got = append(got, tr.rel(fmt.Sprintf("%s %s=%s @%s", s.Tool, s.Key, s.Value, s.Source)))
	}
	slices.Sort(got)
	want := []string{
		"cargo http.cainfo=/corp/bundle.pem @" + tr.rel(cargo) + ":2",
		"docker insecure-registries=registry.corp.example:5000 @" + tr.rel(daemon) + ":1",
		"git http.https://git.corp.example/.sslcainfo=/corp/ca.pem @" + tr.rel(gitconfig) + ":2",
		"go GOINSECURE=git.corp.example @environment",
		"npm cafile=/corp/ca.pem @" + tr.rel(npmrc) + ":1",
		"npm https-proxy=http://REDACTED@proxy.corp.example:3128 @" + tr.rel(npmrc) + ":4",
		"npm strict-ssl=true @" + tr.rel(npmrc) + ":2",
		"pip PIP_CERT=/corp/pip.pem @environment",
		"pip global.cert=/corp/bundle.pem @" + tr.rel(pipconf) + ":2",
		"pip global.index-url=https://REDACTED@pypi.corp.example/simple/ @" + tr.rel(pipconf) + ":3",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("settings (-want +got):\n%s", d)
	}
}
