# Release build of mitmwatch. `go install ./cmd/mitmwatch` and `go test ./...`
# need none of this; it makes what is shipped.
#
#   make release        clean dist/, then: static binaries for RELEASE_PLATFORMS,
#                       the .deb and .rpm for PKG_ARCHS, and SHA256SUMS
#   make build          dist/mitmwatch-<os>-<arch> and dist/mitmwatch-agent-<os>-<arch>
#                       for this machine
#   make binaries       the same [.exe] for RELEASE_PLATFORMS
#   make packages       dist/mitmwatch_<version>_<arch>.deb and .rpm for PKG_ARCHS
#   make version        the stamp, as shell variables: eval "$(make -s version)"
#   make test-packages  install, upgrade, remove and purge the .deb in a fresh
#                       Debian root (as root; see packaging/README.md)
#   make clean
#
# Reproducible: CGO_ENABLED=0, -trimpath, no VCS stamping by the toolchain, and
# no clock: VERSION, REVISION and the build date come from the commit. Two
# builds of one commit with the same Go version are the same bytes.
#   VERSION            the tag at HEAD, else the Go pseudo-version of HEAD
#                      (packaging/version.sh)
#   REVISION           git rev-parse HEAD
#   SOURCE_DATE_EPOCH  the commit's time; the build date, and the time of
#                      every file in the packages
# Outside a Git checkout set all three: make release VERSION=v1.2.0 \
#   REVISION=<commit> SOURCE_DATE_EPOCH=<unix time>

GO ?= go
DIST ?= dist
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
PKG_ARCHS ?= amd64 arm64
MAINTAINER ?= mitmwatch maintainers <maintainers@mitmwatch.invalid>
# nfpm is built from source through the module proxy, never downloaded.
NFPM_VERSION := v2.45.2

VERSION ?= $(shell sh packaging/version.sh 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct HEAD 2>/dev/null)
# Evaluate each once.
VERSION := $(VERSION)
REVISION := $(REVISION)
SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
# GNU date, then BSD date (macOS).
BUILD_DATE := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
export SOURCE_DATE_EPOCH

HOST_OS := $(shell $(GO) env GOOS)
HOST_ARCH := $(shell $(GO) env GOARCH)
HOST_BIN := $(DIST)/mitmwatch-$(HOST_OS)-$(HOST_ARCH)$(if $(filter windows,$(HOST_OS)),.exe)
HOST_AGENT := $(DIST)/mitmwatch-agent-$(HOST_OS)-$(HOST_ARCH)$(if $(filter windows,$(HOST_OS)),.exe)
BUILD := $(DIST)/.build
NFPM := $(BUILD)/tools/nfpm-$(NFPM_VERSION)

# -s -w: no symbol table or DWARF (panics still print their stack). The
# toolchain's own VCS stamping is off: it would mark the tree modified
# whenever an untracked file exists, and REVISION says the same thing.
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION) -X main.buildDate=$(BUILD_DATE)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'

platform_bin = $(DIST)/mitmwatch-$(subst /,-,$(1))$(if $(filter windows/%,$(1)),.exe)
platform_agent = $(DIST)/mitmwatch-agent-$(subst /,-,$(1))$(if $(filter windows/%,$(1)),.exe)
BINARIES := $(foreach p,$(RELEASE_PLATFORMS),$(call platform_bin,$(p)) $(call platform_agent,$(p)))

.PHONY: build binaries packages docs release version test-packages clean stamp FORCE
.DEFAULT_GOAL := build

build: $(HOST_BIN) $(HOST_AGENT)

binaries: $(BINARIES)

# Two binaries per platform. mitmwatch-agent is the whole command; mitmwatch
# is built with -tags lean: it runs check, audit, baseline, validate, ranges
# and version itself, without the package inits of the service's and
# capture's libraries (~7 ms a check), and execs the agent beside it for the
# rest (cmd/mitmwatch/lean.go). The more specific rule, the agent's, wins.
$(DIST)/mitmwatch-agent-%: FORCE | stamp
	GOOS=$(word 1,$(subst -, ,$(basename $*))) GOARCH=$(word 2,$(subst -, ,$(basename $*))) \
		$(GOBUILD) -o $@ ./cmd/mitmwatch

# dist/mitmwatch-linux-amd64, dist/mitmwatch-windows-amd64.exe, …: the stem
# names the platform. Always handed to go build, whose cache knows better
# than make whether anything changed.
$(DIST)/mitmwatch-%: FORCE | stamp
	GOOS=$(word 1,$(subst -, ,$(basename $*))) GOARCH=$(word 2,$(subst -, ,$(basename $*))) \
		$(GOBUILD) -tags lean -o $@ ./cmd/mitmwatch

# The man page and completions, from the help of a binary this machine runs.
docs: $(HOST_BIN) $(HOST_AGENT)
	$(GO) run ./packaging/gendocs -bin $(HOST_BIN) -version $(VERSION) \
		-date $(firstword $(subst T, ,$(BUILD_DATE))) -out $(BUILD)/docs

$(NFPM):
	mkdir -p $(BUILD)/tools
	GOBIN=$(abspath $(BUILD)/tools) CGO_ENABLED=0 $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv $(BUILD)/tools/nfpm $@

packages: $(foreach a,$(PKG_ARCHS),$(DIST)/mitmwatch-linux-$(a) $(DIST)/mitmwatch-agent-linux-$(a)) docs $(NFPM) | stamp
	set -e; for arch in $(PKG_ARCHS); do for pkg in deb rpm; do \
		VERSION='$(VERSION)' GOARCH=$$arch DIST='$(DIST)' MAINTAINER='$(MAINTAINER)' \
			$(NFPM) package --config packaging/nfpm.yaml --packager $$pkg --target $(DIST)/; \
	done; done

release: | stamp
	rm -rf $(DIST)
	$(MAKE) binaries packages VERSION='$(VERSION)' REVISION='$(REVISION)' SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)'
	cd $(DIST) && sha256sum $$(ls) > SHA256SUMS
	@echo "mitmwatch $(VERSION) ($(REVISION), $(BUILD_DATE)) in $(DIST)/:"
	@ls -l $(DIST)

version: | stamp
	@echo "VERSION='$(VERSION)'"
	@echo "REVISION='$(REVISION)'"
	@echo "SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)'"
	@echo "BUILD_DATE='$(BUILD_DATE)'"

test-packages:
	MITMWATCH_REQUIRE_TOOLS=1 $(GO) test -count=1 -v ./packaging

clean:
	rm -rf $(DIST)

stamp:
	@if [ -z "$(VERSION)" ] || [ -z "$(REVISION)" ] || [ -z "$(BUILD_DATE)" ]; then \
		echo "make: not a Git checkout: set VERSION, REVISION and SOURCE_DATE_EPOCH" >&2; exit 1; fi

FORCE:
