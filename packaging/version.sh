#!/bin/sh
# Prints the version `make release` stamps into mitmwatch and its packages:
# the tag (vX.Y.Z) when HEAD is tagged, else the Go pseudo-version of HEAD,
# the one `go install github.com/mitmwatch/mitmwatch/cmd/mitmwatch@<commit>`
# reports: vX.Y.(Z+1)-0.<commit time>-<commit> after the last tag vX.Y.Z,
# v0.0.0-<commit time>-<commit> before any. Either way a later commit sorts
# later, for Go, dpkg and rpm alike. "+dirty" marks changes to tracked files.
set -eu

rev=$(git rev-parse --short=12 HEAD)
if version=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
	:
else
	time=$(TZ=UTC0 git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD)
	if base=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
		case $base in
		*-*) version="$base.0.$time-$rev" ;; # after a pre-release: v1.2.0-rc.1.0.<time>-<rev>
		*) version="${base%.*}.$((${base##*.} + 1))-0.$time-$rev" ;;
		esac
	else
		version="v0.0.0-$time-$rev"
	fi
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	version="$version+dirty"
fi
echo "$version"
