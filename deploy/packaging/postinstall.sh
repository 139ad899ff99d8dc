#!/bin/sh
# postinst of the chattorrent .deb. dpkg calls it as `postinst configure [old-version]`.
# Works on a running system and in a chroot or image build (no systemd running there):
# then it only creates the user and enables the unit, and the first boot starts it.
set -e

[ "$1" = configure ] || exit 0
old_version=$2

# The system user and its groups (see /usr/lib/sysusers.d/chattorrent.conf).
if command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers chattorrent.conf
else
  getent group chattorrent >/dev/null || addgroup --system chattorrent
  getent passwd chattorrent >/dev/null || adduser --system --ingroup chattorrent \
    --home /var/lib/chattorrent --no-create-home --shell /usr/sbin/nologin chattorrent
  for g in gpio audio; do
    getent group "$g" >/dev/null || addgroup --system "$g"
    adduser chattorrent "$g" >/dev/null
  done
fi

# systemd is the init system of the running machine (not a chroot, not a container
# without systemd)?
systemd_running() {
  [ -d /run/systemd/system ] || return 1
  if command -v systemd-detect-virt >/dev/null 2>&1 && systemd-detect-virt --quiet --chroot; then
    return 1
  fi
  return 0
}

# Enable on first install only: an administrator's `systemctl disable` survives upgrades.
# `systemctl enable` works offline too (it only makes symlinks).
if [ -z "$old_version" ]; then
  systemctl enable chattorrent.service >/dev/null 2>&1 || \
    echo "chattorrent: could not enable chattorrent.service; run: systemctl enable chattorrent" >&2
fi

if systemd_running; then
  # The bigger UDP buffers for WebRTC (/usr/lib/sysctl.d/60-chattorrent.conf). Never in a
  # chroot: /proc/sys there is the build host's.
  sysctl --system >/dev/null || echo "chattorrent: sysctl --system failed" >&2
  systemctl daemon-reload
  if [ -z "$old_version" ]; then
    # --no-block: no waiting on a boot transaction (cloud-init runs us during boot).
    systemctl --no-block start chattorrent.service
  else
    # An upgrade restarts the service only if it was running.
    systemctl --no-block try-restart chattorrent.service
  fi
fi
exit 0
