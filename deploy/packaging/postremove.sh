#!/bin/sh
# postrm of the chattorrent .deb, as dh_installsystemd would write it. `remove` masks the
# unit (its file is gone but its enablement is remembered, so a reinstall enables it
# again); `purge` forgets the enablement. The data in /var/lib/chattorrent (chat history,
# the box's TLS certificate authority) is kept even on purge: delete it by hand if it must
# go. The chattorrent system user is kept too, as Debian packages usually do.
set -e

if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
for unit in chattorrent.service chattorrent-settings.path; do
  if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper mask "$unit" >/dev/null || true
  fi
  if [ "$1" = purge ] && command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper purge "$unit" >/dev/null || true
    deb-systemd-helper unmask "$unit" >/dev/null || true
  fi
done
exit 0
