// Package packaging turns mitmwatch into what a platform team installs on
// its build agents: a .deb and an .rpm. It holds no Go code of mitmwatch's:
// nfpm.yaml (the packages' contents), scripts/ (the maintainer scripts,
// which only reload systemd, stop the service on removal, and forget config
// and state on purge), completions/mitmwatch.fish, version.sh (the version a
// release stamps) and gendocs (the man page and the bash and zsh completions,
// generated from the CLI's own help). The Makefile at the repository's root
// drives them: `make release`.
//
// It is a package so that `go test ./...` checks the packages as a user
// meets them: the test builds both with `make packages`, then installs,
// upgrades, removes and purges the .deb, and the .rpm, in a fresh Debian
// root made with debootstrap. It needs root and Debian's debootstrap, rpm,
// zsh and fish, and skips without them unless MITMWATCH_REQUIRE_TOOLS=1 (set
// by CI) makes that a failure.
package packaging
