#!/usr/bin/env bash
# deploy/nspawn-test.sh boots the .deb's unit under a real systemd: a copy of the cached
# Debian root (deploy/debian-root.sh) with the amd64 .deb installed, booted by
# systemd-nspawn with --private-network (the container sees only its own loopback). Inside,
# a one-shot test unit checks, once chattorrent.service is up:
#   - the unit is active (Type=notify: only after the binary sent READY=1),
#   - its watchdog is on (WatchdogUSec, NotifyAccess=main) and the binary keeps pinging it
#     (WatchdogTimestamp moves while the service runs),
#   - /healthz answers (`chattorrent healthcheck`, over HTTPS, trusting the box's CA),
#   - a USB stick mounted under /media after start gets the export on insert, written through
#     the sandbox (ProtectSystem=strict) with folders others can read (0755), and a stick
#     mounted before the service started is writable inside its sandbox (ReadWritePaths=),
#   - the owner's network settings: files the service's user writes into its data directory
#     (as the box does: renamed into place) fire chattorrent-settings.path, and the root
#     service passes them to chattorrent-hotspot and hostnamectl (fakes in /usr/local/sbin,
#     first on systemd's PATH, that record their arguments: the container has no Wi-Fi),
# writes its findings to a file and powers the container off.
#
#   deploy/nspawn-test.sh [dist/chattorrent_<v>_amd64.deb]
#
# Needs root and systemd-nspawn (systemd-container). deploy/check-packaging.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'nspawn-test: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing (apt-get install systemd-container)"
debs=(dist/chattorrent_*_amd64.deb)
deb=${1:-${debs[-1]}}
[ -f "$deb" ] || die "no amd64 .deb: run deploy/build.sh amd64 && deploy/package.sh amd64"

cached=$(deploy/debian-root.sh)
tmp=$(mktemp -d /var/tmp/chattorrent-nspawn.XXXXXX)
# KEEP=1 keeps the root, the console log and the results for a look.
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$tmp"' EXIT; fi
root=$tmp/root
cp -a "$cached" "$root"
cp "$deb" "$root/tmp/chattorrent.deb"
chroot "$root" dpkg -i /tmp/chattorrent.deb > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; die "dpkg -i in the root"; }
mkdir -p "$root/media" "$tmp/results"

cat > "$root/usr/local/sbin/chattorrent-nspawn-check" <<'CHECK'
#!/bin/sh
# Runs inside the container (chattorrent-nspawn-check.service); results in /results.
out=/results/result
say() { echo "$*" >> "$out"; }
i=0
until [ "$(systemctl show -P ActiveState chattorrent.service)" = active ]; do
  i=$((i + 1)); [ $i -gt 120 ] && break; sleep 1
done
systemctl show -p ActiveState -p Type -p NotifyAccess -p WatchdogUSec chattorrent.service >> "$out"
w1=$(systemctl show -P WatchdogTimestampMonotonic chattorrent.service)
if chattorrent healthcheck --data-dir /var/lib/chattorrent --https-addr :443 > /results/healthz 2>&1; then
  say "healthz=ok"
fi
# A stick: a file system of its own (a mount point), mounted after the service started,
# owned by the service's user as a FAT stick mounted with uid= would be.
mkdir -p /media/STICK
mount -t tmpfs -o "mode=0755,uid=$(id -u chattorrent),gid=$(id -g chattorrent)" stick /media/STICK
i=0
until ls -d /media/STICK/chattorrent-* > /dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 60 ] && break; sleep 1
done
find /media/STICK -printf '%M %p\n' > /results/stick
# A stick already mounted when the service started (chattorrent-nspawn-stick.service):
# writable inside the service's sandbox (its mount namespace) only thanks to ReadWritePaths=.
pid=$(systemctl show -P MainPID chattorrent.service)
if nsenter -t "$pid" -m sh -c 'echo x > /media/BOOTSTICK/probe' 2>> /results/bootstick; then
  say "bootstick=writable"
fi
# The owner's settings, written as the box's user writes them; the path unit applies them.
start=$(date +%s)
runuser -u chattorrent -- sh -c 'cd /var/lib/chattorrent && printf "SSID=Casa \"q\" \$(x)\nPASSPHRASE=secret pass\nCOUNTRY=ES\n" > .w &&
  mv .w wifi.conf && printf "kitchen\n" > .n && mv .n boxname' 2>> /results/settings
i=0
until [ -s /results/hostnamectl.calls ] && [ -s /results/chattorrent-hotspot.calls ]; do
  i=$((i + 1)); [ $i -gt 30 ] && break; sleep 1
done
say "settings=$(systemctl show -P Result chattorrent-settings.service) after $(($(date +%s) - start))s"
journalctl -u chattorrent-settings.service --no-pager >> /results/settings 2>&1
# Two watchdog periods later the timestamp has moved: the binary pings.
sleep 31
w2=$(systemctl show -P WatchdogTimestampMonotonic chattorrent.service)
[ -n "$w1" ] && [ "$w2" != "$w1" ] && say "watchdog=pinged"
say "ActiveStateAfter=$(systemctl show -P ActiveState chattorrent.service)"
journalctl -u chattorrent.service --no-pager > /results/journal 2>&1
say done
systemctl poweroff
CHECK
chmod 0755 "$root/usr/local/sbin/chattorrent-nspawn-check"
# Fakes for the settings applier (no Wi-Fi, no hostnamed needed): each argument on a line.
for cmd in chattorrent-hotspot hostnamectl; do
  # shellcheck disable=SC2016 # the fake's script is literal
  printf '#!/bin/sh\nfor a in "$@"; do printf "%%s\\n" "$a"; done >> /results/%s.calls\n' "$cmd" > "$root/usr/local/sbin/$cmd"
  chmod 0755 "$root/usr/local/sbin/$cmd"
done
cat > "$root/etc/systemd/system/chattorrent-nspawn-check.service" <<'UNIT'
[Unit]
Description=ChatTorrent nspawn test
After=chattorrent.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/chattorrent-nspawn-check
[Install]
WantedBy=multi-user.target
UNIT
cat > "$root/etc/systemd/system/chattorrent-nspawn-stick.service" <<'UNIT'
[Unit]
Description=ChatTorrent nspawn test: a USB stick present at boot
Before=chattorrent.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mkdir -p /media/BOOTSTICK
ExecStart=/bin/mount -t tmpfs -o mode=0777 bootstick /media/BOOTSTICK
[Install]
WantedBy=multi-user.target
UNIT
systemctl --root="$root" enable chattorrent-nspawn-check.service chattorrent-nspawn-stick.service >/dev/null 2>&1
: > "$root/etc/machine-id"

start=$SECONDS
timeout 300 systemd-nspawn --quiet --boot --private-network --register=no --keep-unit \
  --directory="$root" --bind="$tmp/results:/results" --console=pipe \
  > "$tmp/console.log" 2>&1 < /dev/null || true
elapsed=$((SECONDS - start))

r=$tmp/results
fail() {
  for f in result stick journal; do [ -f "$r/$f" ] && sed "s|^|    $f: |" "$r/$f" >&2; done
  die "$*"
}
if ! grep -qx 'done' "$r/result" 2>/dev/null; then
  tail -n 40 "$tmp/console.log" >&2
  die "the check unit did not finish (${elapsed}s)"
fi
grep -qx 'ActiveState=active' "$r/result" || fail "chattorrent.service is not active"
grep -qx 'Type=notify' "$r/result" || fail "the unit is not Type=notify"
grep -qx 'NotifyAccess=main' "$r/result" || fail "NotifyAccess is not main"
grep -qx 'WatchdogUSec=30s' "$r/result" || fail "the watchdog is not 30s"
grep -qx 'healthz=ok' "$r/result" || fail "/healthz did not answer"
grep -qx 'watchdog=pinged' "$r/result" || fail "no watchdog ping from the binary"
grep -qx 'ActiveStateAfter=active' "$r/result" || fail "the service did not stay active"
grep -qx 'bootstick=writable' "$r/result" || fail "a stick mounted before the service started is not writable in its sandbox"
grep -q '^settings=success' "$r/result" || { sed 's/^/    settings: /' "$r/settings" >&2; fail "chattorrent-settings.service did not succeed"; }
# shellcheck disable=SC2016 # the $(x) is the literal SSID
[ "$(cat "$r/chattorrent-hotspot.calls")" = "$(printf -- '--ssid\nCasa "q" $(x)\n--password\nsecret pass\n--country\nES')" ] ||
  fail "the path unit did not pass the Wi-Fi on exactly: $(cat "$r/chattorrent-hotspot.calls" 2>&1)"
[ "$(cat "$r/hostnamectl.calls")" = "$(printf 'set-hostname\nkitchen')" ] ||
  fail "the path unit did not set the hostname: $(cat "$r/hostnamectl.calls" 2>&1)"

grep -Eq '^-rw-r--r-- /media/STICK/chattorrent-[0-9-]+/' "$r/stick" 2>/dev/null ||
  grep -Eq '^drwxr-xr-x /media/STICK/chattorrent-[0-9-]+$' "$r/stick" || fail "no readable export on the stick"
if grep -Eq '^-rw-------|^drwx------' "$r/stick"; then fail "the export left private files on the stick"; fi
printf 'nspawn-test: passed in %ss (boot, READY=1, watchdog pings, /healthz, USB export, settings path unit)\n' "$elapsed"
sed 's/^/  /' "$r/result" "$r/stick"
