package audit

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bothWays runs a test with the real binaries (when installed) and with
// the fallback that reads the files, which must agree.
func bothWays(t *testing.T, binary string, test func(t *testing.T, tr *tree)) {
	t.Helper()
	for _, mode := range []string{"binary", "files"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tr := newTree(t)
			if mode == "files" {
				tr.without()
			} else {
				needBinary(t, binary)
			}
			test(t, tr)
		})
	}
}

func checkFindings(t *testing.T, tr *tree, got []Finding, want []string) {
	t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, tr.summary(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, f := range got {
		if f.Why == "" || f.Fix == "" {
			t.Errorf("%s %s: why or fix missing", f.Tool, f.Setting)
		}
		if l := strings.ToLower(f.Fix); strings.Contains(l, "disable verification") || strings.Contains(l, "sslverify false") || strings.Contains(l, "strict-ssl=false") && !strings.Contains(l, "never") {
			t.Errorf("%s %s: the fix recommends turning verification off: %s", f.Tool, f.Setting, f.Fix)
		}
	}
}

func checkHosts(t *testing.T, tr *tree, got []Host, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, tr.hosts(got)); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestGoWorkarounds(t *testing.T) {
	t.Parallel()
	bothWays(t, "go", func(t *testing.T, tr *tree) {
		tr.env["GOENV"] = tr.write(filepath.Join(tr.base, "goenv"), "GOINSECURE=git.lab.example\nGOSUMDB=off\n# a comment go ignores\nGOPRIVATE=*.corp.example,github.com\n")
		tr.env["GOPROXY"] = "http://goproxy.lab.example,direct"
		tr.env["GOFLAGS"] = "-mod=mod -insecure"
		tr.env["GONOSUMCHECK"] = "1"
		r := tr.audit(false)
		checkFindings(t, tr, only(r.Findings, "go"), []string{
			"critical go GOINSECURE git.lab.example @$T/goenv:1",
			"critical go GOSUMDB off @$T/goenv:2",
			"critical go GOPRIVATE *.corp.example,github.com @$T/goenv:4",
			"critical go GOPROXY http://goproxy.lab.example @environment",
			"warning go GOFLAGS -mod=mod -insecure @environment",
			"warning go GONOSUMCHECK 1 @environment",
		})
		checkHosts(t, tr, r.Hosts, []string{
			"http://goproxy.lab.example:80 GOPROXY (environment)",
			"https://git.lab.example:443 GOINSECURE ($T/goenv:1)",
		})
		if len(r.Warnings) != 0 {
			t.Errorf("warnings: %q", r.Warnings)
		}
	})
}

func TestGoPrivateDone(t *testing.T) {
	t.Parallel()
	bothWays(t, "go", func(t *testing.T, tr *tree) {
		// The recommended setup: GOPRIVATE for the company's modules, the
		// checksum database on for the rest. Only the explicit GONOSUMDB
		// is worth a note.
		tr.env["GOENV"] = tr.write(filepath.Join(tr.base, "goenv"), "GOPRIVATE=git.corp.example/team,github.com/myorg/*\nGOSUMDB=sum.lab.example+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8\n")
		tr.env["GONOSUMDB"] = "github.com/myorg/*"
		tr.env["GOPROXY"] = "https://goproxy.lab.example|direct"
		r := tr.audit(false)
		checkFindings(t, tr, only(r.Findings, "go"), []string{
			"info go GONOSUMDB github.com/myorg/* @environment",
		})
		checkHosts(t, tr, r.Hosts, []string{
			"https://goproxy.lab.example:443 GOPROXY (environment)",
			"https://sum.lab.example:443 GOSUMDB ($T/goenv:2)",
			"https://git.corp.example:443 GOPRIVATE ($T/goenv:1)",
			"https://github.com:443 GOPRIVATE ($T/goenv:1)", // fetched directly for github.com/myorg/*
		})
	})
}

func TestGoDirectOnly(t *testing.T) {
	t.Parallel()
	bothWays(t, "go", func(t *testing.T, tr *tree) {
		tr.env["GOPROXY"] = "direct"
		tr.env["GONOSUMDB"] = "*"
		r := tr.audit(false)
		checkFindings(t, tr, only(r.Findings, "go"), []string{
			"critical go GONOSUMDB * @environment",
			"warning go GOPROXY direct @environment",
		})
	})
}

// TestGitSeedWorkarounds writes the workaround of the seed article (an
// insteadOf to http and sslVerify false for the host), and its cousins,
// and reads them back through git.
func TestGitSeedWorkarounds(t *testing.T) {
	t.Parallel()
	bothWays(t, "git", func(t *testing.T, tr *tree) {
		tr.write(filepath.Join(tr.home, ".gitconfig"), `[user]
	name = Test
[http "http://git.lab.example/"]
	sslVerify = false
[url "http://git.lab.example/"]
	insteadOf = https://git.lab.example/
[http]
	sslCAInfo = /nonexistent/corp-ca.pem
	proxy = http://proxy.lab.example:3128 ; the office proxy
[include]
	path = extra.gitconfig
`)
		tr.write(filepath.Join(tr.home, "extra.gitconfig"), `[http]
	sslverify = no
[url "https://mirror.lab.example/"]
	insteadOf = https://upstream.lab.example/
[url "git://git2.lab.example/"]
	insteadOf = corp:
`)
		tr.write(filepath.Join(tr.home, ".config", "git", "config"), "[remote \"origin\"]\n\turl = http://git.lab.example/repo.git\n")
		tr.env["GIT_SSL_NO_VERIFY"] = "1"
		tr.env["GOPROXY"], tr.env["GOSUMDB"] = "off", "off" // no Go hosts in the way
		r := tr.audit(false)
		checkFindings(t, tr, only(r.Findings, "git"), []string{
			"critical git http.http://git.lab.example/.sslVerify false @$T/home/.gitconfig:4",
			"critical git url.http://git.lab.example/.insteadOf https://git.lab.example/ @$T/home/.gitconfig:6",
			"warning git http.sslCAInfo /nonexistent/corp-ca.pem @$T/home/.gitconfig:8",
			"info git http.proxy http://proxy.lab.example:3128 @$T/home/.gitconfig:9",
			"critical git http.sslVerify no @$T/home/extra.gitconfig:2",
			"warning git url.git://git2.lab.example/.insteadOf corp: @$T/home/extra.gitconfig:6",
			"warning git remote.origin.url http://git.lab.example/repo.git @$T/home/.config/git/config:2",
			"critical git GIT_SSL_NO_VERIFY 1 @environment",
		})
		checkHosts(t, tr, r.Hosts, []string{
			"http://git.lab.example:80 remote.origin.url ($T/home/.config/git/config:2)",
			"https://mirror.lab.example:443 url.https://mirror.lab.example/.insteadOf ($T/home/extra.gitconfig:4)",
		})
	})
}

func TestGitSystem(t *testing.T) {
	t.Parallel()
	bothWays(t, "git", func(t *testing.T, tr *tree) {
		tr.write(filepath.Join(tr.root, "etc", "gitconfig"), "[http]\n\tsslVerify = off\n")
		if r := tr.audit(false); len(only(r.Findings, "git")) != 0 {
			t.Errorf("without --all-users: %q", tr.summary(r.Findings))
		}
		checkFindings(t, tr, only(tr.audit(true).Findings, "git"), []string{
			"critical git http.sslVerify off @$T/root/etc/gitconfig:2",
		})
	})
}

func TestNpm(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.home, ".npmrc"), `; written during the proxy outage
strict-ssl=false
registry=http://npm.lab.example/
@corp:registry=https://npm.corp.example/
cafile=${HOME}/missing-ca.pem
https-proxy=http://proxy.lab.example:3128
//npm.lab.example/:_authToken=${NPM_TOKEN}
[section]
strict-ssl=false
`)
	tr.write(filepath.Join(tr.proj, ".npmrc"), "registry = \"https://npm.lab.example/\"\nca=\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\"\n")
	tr.write(filepath.Join(tr.home, ".config", "pnpm", "rc"), "strict-ssl=0\n")
	tr.env["npm_config_registry"] = "http://env.lab.example/"
	tr.env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"
	tr.env["NODE_EXTRA_CA_CERTS"] = writeRoots(t, filepath.Join(tr.base, "corp.pem"), newRoot(t, "Test Corp Root", "Test Corp"))
	r := tr.audit(false)
	checkFindings(t, tr, only(r.Findings, "npm", "pnpm"), []string{
		"critical npm strict-ssl false @$T/home/.npmrc:2",
		"critical npm registry http://npm.lab.example/ @$T/home/.npmrc:3",
		"warning npm cafile $T/home/missing-ca.pem @$T/home/.npmrc:5",
		"info npm https-proxy http://proxy.lab.example:3128 @$T/home/.npmrc:6",
		"info npm ca (inline certificate) @$T/home/src/app/.npmrc:2",
		"critical pnpm strict-ssl 0 @$T/home/.config/pnpm/rc:1",
		"critical npm npm_config_registry http://env.lab.example/ @environment",
		"critical npm NODE_TLS_REJECT_UNAUTHORIZED 0 @environment",
		"info npm NODE_EXTRA_CA_CERTS CN=Test Corp Root,O=Test Corp @$T/corp.pem:2",
	})
	checkHosts(t, tr, r.Hosts, []string{
		"http://npm.lab.example:80 registry ($T/home/.npmrc:3)",
		"https://npm.corp.example:443 @corp:registry ($T/home/.npmrc:4)",
		"https://npm.lab.example:443 registry ($T/home/src/app/.npmrc:1)",
		"http://env.lab.example:80 npm_config_registry (environment)",
	})
}

func TestYarn(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.home, ".yarnrc"), "# yarn lockfile v1\nstrict-ssl false\nregistry \"http://yarn1.lab.example/\"\n")
	tr.write(filepath.Join(tr.proj, ".yarnrc.yml"), `enableStrictSsl: false
npmRegistryServer: "https://yarn.lab.example"
unsafeHttpWhitelist:
  - "*.lab.example"
  - insecure.lab.example
npmScopes:
  corp:
    npmRegistryServer: "http://npm.corp.example"
httpsCaFilePath: /nonexistent/ca.pem
`)
	r := tr.audit(false)
	checkFindings(t, tr, r.Findings, []string{
		"critical yarn strict-ssl false @$T/home/.yarnrc:2",
		"critical yarn registry http://yarn1.lab.example/ @$T/home/.yarnrc:3",
		"critical yarn enableStrictSsl false @$T/home/src/app/.yarnrc.yml:1",
		"critical yarn unsafeHttpWhitelist *.lab.example insecure.lab.example @$T/home/src/app/.yarnrc.yml:3",
		"critical yarn npmScopes.corp.npmRegistryServer http://npm.corp.example @$T/home/src/app/.yarnrc.yml:8",
		"warning yarn httpsCaFilePath /nonexistent/ca.pem @$T/home/src/app/.yarnrc.yml:9",
	})
	checkHosts(t, tr, r.Hosts, []string{
		"https://yarn.lab.example:443 npmRegistryServer ($T/home/src/app/.yarnrc.yml:2)",
		"http://insecure.lab.example:80 unsafeHttpWhitelist ($T/home/src/app/.yarnrc.yml:3)",
		"http://npm.corp.example:80 npmScopes.corp.npmRegistryServer ($T/home/src/app/.yarnrc.yml:8)",
		"http://yarn1.lab.example:80 registry ($T/home/.yarnrc:3)",
	})
}

func TestPip(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.home, ".config", "pip", "pip.conf"), `[global]
index-url = http://pypi.lab.example/simple
trusted-host =
    pypi.lab.example
    files.lab.example:8443
extra-index-url = https://extra.lab.example/simple
# cert added after the proxy came back
[install]
cert = /nonexistent/bundle.pem
`)
	tr.write(filepath.Join(tr.home, ".pip", "pip.conf"), "[global]\nproxy = http://proxy.lab.example:3128\n")
	tr.env["PIP_CONFIG_FILE"] = tr.write(filepath.Join(tr.base, "pipenv.conf"), "[global]\ntrusted_host = env.lab.example\n")
	tr.env["PIP_TRUSTED_HOST"] = "pip-env.lab.example"
	tr.env["REQUESTS_CA_BUNDLE"] = "/nonexistent/req.pem"
	tr.write(filepath.Join(tr.root, "etc", "pip.conf"), "[global]\nfind-links = http://links.lab.example/\n")
	r := tr.audit(true)
	checkFindings(t, tr, r.Findings, []string{
		"critical pip global.index-url http://pypi.lab.example/simple @$T/home/.config/pip/pip.conf:2",
		"critical pip global.trusted-host pypi.lab.example files.lab.example:8443 @$T/home/.config/pip/pip.conf:3",
		"warning pip install.cert /nonexistent/bundle.pem @$T/home/.config/pip/pip.conf:9",
		"info pip global.proxy http://proxy.lab.example:3128 @$T/home/.pip/pip.conf:2",
		"critical pip global.trusted-host env.lab.example @$T/pipenv.conf:2",
		"critical pip PIP_TRUSTED_HOST pip-env.lab.example @environment",
		"warning pip REQUESTS_CA_BUNDLE /nonexistent/req.pem @environment",
		"critical pip global.find-links http://links.lab.example/ @$T/root/etc/pip.conf:2",
	})
	checkHosts(t, tr, r.Hosts, []string{
		"http://links.lab.example:80 global.find-links ($T/root/etc/pip.conf:2)",
		"http://pypi.lab.example:80 global.index-url ($T/home/.config/pip/pip.conf:2)",
		"https://pypi.lab.example:443 global.trusted-host ($T/home/.config/pip/pip.conf:3)",
		"https://files.lab.example:8443 global.trusted-host ($T/home/.config/pip/pip.conf:3)",
		"https://extra.lab.example:443 global.extra-index-url ($T/home/.config/pip/pip.conf:6)",
		"https://env.lab.example:443 global.trusted-host ($T/pipenv.conf:2)",
		"https://pip-env.lab.example:443 PIP_TRUSTED_HOST (environment)",
	})
}

func TestCargo(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.home, ".cargo", "config.toml"), `[http]
check-revoke = false
cainfo = "/nonexistent/ca.pem"

[registries.corp]
index = "sparse+http://crates.lab.example/index/"

[registries]
other = { index = "https://other.lab.example/git/index" }

[source.crates-io]
replace-with = "mirror"

[source.mirror]
registry = "sparse+https://mirror.lab.example/"
`)
	tr.write(filepath.Join(tr.proj, ".cargo", "config.toml"), "registry.index = 'http://legacy.lab.example/index'\n")
	tr.env["CARGO_HTTP_CHECK_REVOKE"] = "false"
	tr.env["CARGO_REGISTRIES_MY_REG_INDEX"] = "http://env.lab.example/"
	opts := tr.options(false)
	for k, v := range tr.env {
		opts.Environ = append(opts.Environ, k+"="+v)
	}
	slices.Sort(opts.Environ)
	r := Run(t.Context(), opts)
	checkFindings(t, tr, r.Findings, []string{
		"warning cargo http.check-revoke false @$T/home/.cargo/config.toml:2",
		"warning cargo http.cainfo /nonexistent/ca.pem @$T/home/.cargo/config.toml:3",
		"critical cargo registries.corp.index sparse+http://crates.lab.example/index/ @$T/home/.cargo/config.toml:6",
		"critical cargo registry.index http://legacy.lab.example/index @$T/home/src/app/.cargo/config.toml:1",
		"warning cargo CARGO_HTTP_CHECK_REVOKE false @environment",
		"critical cargo CARGO_REGISTRIES_MY_REG_INDEX http://env.lab.example/ @environment",
	})
	checkHosts(t, tr, r.Hosts, []string{
		"http://legacy.lab.example:80 registry.index ($T/home/src/app/.cargo/config.toml:1)",
		"http://crates.lab.example:80 registries.corp.index ($T/home/.cargo/config.toml:6)",
		"https://other.lab.example:443 registries.other.index ($T/home/.cargo/config.toml:9)",
		"https://mirror.lab.example:443 source.mirror.registry ($T/home/.cargo/config.toml:15)",
		"http://env.lab.example:80 CARGO_REGISTRIES_MY_REG_INDEX (environment)",
	})
}

func TestDocker(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	tr.write(filepath.Join(tr.root, "etc", "docker", "daemon.json"), `{
  "insecure-registries": [
    "registry.lab.example:5000",
    "10.0.0.0/8"
  ],
  "registry-mirrors": ["https://mirror.lab.example", "http://plain.lab.example:5000"],
  "proxies": {"https-proxy": "http://proxy.lab.example:3128"}
}
`)
	if r := tr.audit(false); len(r.Findings) != 0 {
		t.Errorf("without --all-users: %q; want nothing", tr.summary(r.Findings))
	}
	r := tr.audit(true)
	checkFindings(t, tr, r.Findings, []string{
		"critical docker insecure-registries registry.lab.example:5000 @$T/root/etc/docker/daemon.json:3",
		"critical docker insecure-registries 10.0.0.0/8 @$T/root/etc/docker/daemon.json:4",
		"critical docker registry-mirrors http://plain.lab.example:5000 @$T/root/etc/docker/daemon.json:6",
		"info docker proxies.https-proxy http://proxy.lab.example:3128 @$T/root/etc/docker/daemon.json:7",
	})
	checkHosts(t, tr, r.Hosts, []string{
		"https://registry.lab.example:5000 insecure-registries ($T/root/etc/docker/daemon.json:3)",
		"https://mirror.lab.example:443 registry-mirrors ($T/root/etc/docker/daemon.json:6)",
		"http://plain.lab.example:5000 registry-mirrors ($T/root/etc/docker/daemon.json:6)",
	})
}

func TestProxyVariables(t *testing.T) {
	t.Parallel()
	tr := newTree(t).without()
	opts := tr.options(false)
	opts.Environ = []string{
		"HOME=" + tr.home,
		"Https_Proxy=http://proxy.lab.example:3128",
		"ALL_PROXY=socks5://proxy.lab.example:1080",
		"no_proxy=localhost,.corp.example",
		"HTTP_PROXY=", // set but empty: nothing to report
	}
	r := Run(t.Context(), opts)
	checkFindings(t, tr, r.Findings, []string{
		"info env Https_Proxy http://proxy.lab.example:3128 @environment",
		"info env ALL_PROXY socks5://proxy.lab.example:1080 @environment",
		"info env no_proxy localhost,.corp.example @environment",
	})
}
