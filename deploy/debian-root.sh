#!/usr/bin/env bash
# deploy/debian-root.sh prints the path of a minimal Debian bookworm root file system
# (amd64, minbase plus systemd-sysv and dbus) for the package tests: dpkg runs in it under
# chroot (deploy/check-packaging.sh) and systemd-nspawn boots it (deploy/nspawn-test.sh).
# It is made once with debootstrap (needs root and Debian's package archive; a cold build took
# 8.5 minutes on 2 busy cores here) and kept in $CHATTORRENT_TEST_CACHE (default
# /var/tmp/chattorrent-test-cache), reused by every later run. Callers copy it before use.
# MIRROR overrides debootstrap's default archive.
set -euo pipefail

die() { printf 'debian-root: %s\n' "$*" >&2; exit 1; }
cache=${CHATTORRENT_TEST_CACHE:-/var/tmp/chattorrent-test-cache}
# Bump the name when the package list changes: an old cache is then not reused.
root=$cache/debian-bookworm-amd64
if [ ! -x "$root/usr/bin/dpkg" ] || [ ! -x "$root/lib/systemd/systemd" ]; then
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
  mkdir -p "$cache"
  rm -rf "$root.new"
  printf 'debian-root: debootstrap bookworm into %s (once; minutes)\n' "$root" >&2
  debootstrap --variant=minbase --include=systemd-sysv,dbus bookworm "$root.new" ${MIRROR:+"$MIRROR"} \
    > "$cache/debootstrap.log" 2>&1 || { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$root"
  mv "$root.new" "$root"
fi
printf '%s\n' "$root"
