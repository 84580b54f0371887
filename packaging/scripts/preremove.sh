#!/bin/sh
# mitmwatch prerm (deb: remove | upgrade <new-version> | deconfigure | …)
# and %preun (rpm: $1 = 0 when the package is erased, 1 on upgrade).
#
# On removal only, stop the service if the admin had started it: its binary
# is about to go, and a daemon left running from a deleted file would keep
# serving until the next reboot. An upgrade stops nothing. Whether the
# service is enabled is the admin's choice and survives removal (purge
# forgets it).
set -e

case "$1" in
remove | 0)
	if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl stop mitmwatch.service || true
	fi
	;;
esac
exit 0
