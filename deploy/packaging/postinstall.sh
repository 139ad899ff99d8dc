#!/bin/sh
# postinst of the chattorrent .deb. dpkg calls it as `postinst configure [old-version]`
# (old-version is also set when reinstalling after `dpkg -r`: the package was left in
# config-files state). The systemd part is what dh_installsystemd would generate, with
# deb-systemd-helper (init-system-helpers, essential in Debian and Raspberry Pi OS):
#  - enabled on first install, and again on a reinstall after `dpkg -r`;
#  - an administrator's `systemctl disable` survives upgrades and reinstalls;
#  - works in a chroot or image build (no systemd running): the first boot starts it.
set -e

case "$1" in
  configure|abort-upgrade|abort-deconfigure|abort-remove) ;;
  *) exit 0 ;;
esac

# The system user and its groups (see /usr/lib/sysusers.d/chattorrent.conf); the gpio
# group is made too if the system has none (plain Debian).
systemd-sysusers chattorrent.conf

# The service, and the path unit that applies the owner's network settings as root.
for unit in chattorrent.service chattorrent-settings.path; do
  # Only removes the mask our postrm put on `dpkg -r`.
  deb-systemd-helper unmask "$unit" >/dev/null || true
  # was-enabled is true on a first install (no state yet) and when the unit was enabled
  # before `dpkg -r` or an upgrade; false after an administrator's disable.
  if deb-systemd-helper --quiet was-enabled "$unit"; then
    deb-systemd-helper enable "$unit" >/dev/null || true
  else
    deb-systemd-helper update-state "$unit" >/dev/null || true
  fi
done

# systemd is the init system of the running machine (not a chroot)?
if [ -d /run/systemd/system ] && ! { command -v systemd-detect-virt >/dev/null 2>&1 &&
  systemd-detect-virt --quiet --chroot; }; then
  # The bigger UDP buffers for WebRTC (/usr/lib/sysctl.d/60-chattorrent.conf). Never in a
  # chroot: /proc/sys there is the build host's.
  sysctl --system >/dev/null || echo "chattorrent: sysctl --system failed" >&2
  systemctl --system daemon-reload >/dev/null || true
  if [ -n "$2" ]; then action=restart; else action=start; fi
  # deb-systemd-invoke does nothing for a disabled unit; --no-block: no waiting on a boot
  # transaction (a first-boot script may run us).
  deb-systemd-invoke --no-block "$action" chattorrent.service >/dev/null || true
  deb-systemd-invoke --no-block start chattorrent-settings.path >/dev/null || true
fi
exit 0
