#!/bin/sh
# prerm of the chattorrent .deb: `prerm remove` stops the service (it stays enabled: see
# postrm). On `prerm upgrade` it keeps running; the new postinst restarts it.
set -e

if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop chattorrent.service >/dev/null || true
fi
exit 0
