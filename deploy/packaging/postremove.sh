#!/bin/sh
# postrm of the chattorrent .deb. The data in /var/lib/chattorrent (chat history, the box's
# TLS certificate authority) is kept, even on purge: delete it by hand if it must go.
# The chattorrent system user is kept too, as Debian packages usually do.
set -e

case "$1" in
  remove|purge)
    if [ -d /run/systemd/system ]; then
      systemctl daemon-reload || true
    fi
    ;;
esac
exit 0
