#!/bin/sh
# mitmwatch postinst (deb: configure <old-version>) and %post (rpm: $1 = 1
# on install, 2 on upgrade).
#
# Only tells systemd that the unit changed. Nothing is enabled or started:
# the admin does that (`systemctl enable --now mitmwatch`), and a running
# service keeps the old binary until the admin restarts it.
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
