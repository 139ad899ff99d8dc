#!/bin/sh
# prerm of the chattorrent .deb: `prerm remove` stops the service and the settings path
# unit (they stay enabled: see postrm). On `prerm upgrade` they keep running; the new
# postinst restarts the service.
set -e

if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop chattorrent-settings.path chattorrent.service >/dev/null || true
fi
exit 0
