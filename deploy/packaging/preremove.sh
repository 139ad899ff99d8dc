#!/bin/sh
# prerm of the chattorrent .deb: `prerm remove` stops and disables the service. On
# `prerm upgrade` it keeps running; the new postinst restarts it.
set -e

[ "$1" = remove ] || exit 0

if [ -d /run/systemd/system ]; then
  systemctl stop chattorrent.service || true
fi
systemctl disable chattorrent.service >/dev/null 2>&1 || true
exit 0
