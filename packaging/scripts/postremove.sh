#!/bin/sh
# mitmwatch postrm (deb: remove | purge | upgrade <new-version> | …) and
# %postun (rpm: $1 = 0 when the package is erased, 1 on upgrade).
#
# Removal keeps the configuration (/etc/mitmwatch) and the state (the last
# results, the learned baseline, the ranges snapshot in /var/lib/mitmwatch).
# Purge (deb only: rpm has none) removes both, and forgets that the service
# was enabled.
set -e

root="${DPKG_ROOT:-}"
case "$1" in
purge)
	rm -rf "$root/etc/mitmwatch"
	# StateDirectory= under DynamicUser=yes: /var/lib/mitmwatch is a link to
	# /var/lib/private/mitmwatch. `mitmwatch ranges update` run as root
	# before the service ever ran leaves a plain directory.
	rm -rf "$root/var/lib/mitmwatch" "$root/var/lib/private/mitmwatch"
	# What `systemctl enable` made: the unit file is gone, so `systemctl
	# disable` no longer can.
	rm -f "$root/etc/systemd/system/multi-user.target.wants/mitmwatch.service"
	;;
esac

case "$1" in
remove | purge | 0)
	if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
