#!/usr/bin/env bash
# shellcheck disable=SC2016 # the hostile values and the fakes' script are literal on purpose
# deploy/packaging/test-apply-settings.sh tests apply-settings.sh (the root half of the
# owner's network settings) with fake chattorrent-hotspot and hostnamectl on PATH (this
# machine has no Wi-Fi) that record their arguments: valid files with hostile-looking
# values are passed on exactly, as single arguments; hostile files (bad lengths, control
# characters, CR, NUL, invalid UTF-8, unknown or repeated keys, a symlink, a file the data
# directory's owner cannot read, oversized) are refused with nothing applied; a file
# applied once is not applied again. Needs root (setpriv to another user). ~1 s.
set -euo pipefail
cd "$(dirname "$0")"
script=$PWD/apply-settings.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { printf 'test-apply-settings: FAIL: %s\n' "$*" >&2; exit 1; }

mkdir -p "$t/bin"
for cmd in chattorrent-hotspot hostnamectl; do
  # Each argument on its own line, then a line "--": exact, whatever the argument holds.
  printf '#!/bin/sh\nfor a in "$@"; do printf "%%s\\n" "$a"; done >> "%s/%s.calls"\necho -- >> "%s/%s.calls"\n' \
    "$t" "$cmd" "$t" "$cmd" > "$t/bin/$cmd"
  chmod +x "$t/bin/$cmd"
done

# fresh: a new data directory, state, boot file and hosts file; no calls yet.
fresh() {
  rm -rf "$t/data" "$t/state" "$t"/*.calls
  mkdir -p "$t/data"
  printf '# ChatTorrent Wi-Fi (comment kept)\nSSID=Old\nPASSPHRASE=old-pass-1\nCOUNTRY=GB\n' > "$t/boot-wifi.txt"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tchattorrent-ab12\n' > "$t/hosts"
}
run() {
  (cd "$t" && PATH=$t/bin:$PATH "$script" --data-dir "$t/data" --boot-wifi "$t/boot-wifi.txt" --hosts "$t/hosts" \
    --state-dir "$t/state") > "$t/out" 2>&1
}

# A valid file whose values look like shell: passed on as they are.
fresh
ssid='$(touch pwned) "q";`id` ☕'
pass="\$HOME 'x' \`id\` \\ ~"
printf 'SSID=%s\nPASSPHRASE=%s\nCOUNTRY=ES\n' "$ssid" "$pass" > "$t/data/wifi.conf"
printf 'kitchen\n' > "$t/data/boxname"
run || { cat "$t/out" >&2; fail "a valid wifi.conf and boxname were refused"; }
want=$(printf -- '--ssid\n%s\n--password\n%s\n--country\nES\n--' "$ssid" "$pass")
[ "$(cat "$t/chattorrent-hotspot.calls")" = "$want" ] || fail "chattorrent-hotspot got: $(cat "$t/chattorrent-hotspot.calls")"
[ "$(cat "$t/hostnamectl.calls")" = "$(printf 'set-hostname\nkitchen\n--')" ] || fail "hostnamectl got: $(cat "$t/hostnamectl.calls")"
[ "$(cat "$t/boot-wifi.txt")" = "$(printf '# ChatTorrent Wi-Fi (comment kept)\nSSID=%s\nPASSPHRASE=%s\nCOUNTRY=ES' "$ssid" "$pass")" ] \
  || fail "the boot partition's file: $(cat "$t/boot-wifi.txt")"
grep -qx "$(printf '127.0.1.1\tkitchen')" "$t/hosts" || fail "/etc/hosts: $(cat "$t/hosts")"
[ "$(grep -c '^127.0.1.1' "$t/hosts")" = 1 ] || fail "/etc/hosts has two 127.0.1.1 lines"
[ ! -e "$t/pwned" ] || fail "a value was evaluated"
# The same files again: nothing re-applied (no hotspot restart for phones).
rm -f "$t"/*.calls
run || fail "a second run failed"
if [ -e "$t/chattorrent-hotspot.calls" ] || [ -e "$t/hostnamectl.calls" ]; then fail "unchanged files were applied again"; fi
echo "  valid files: applied exactly, once"

# Hostile wifi.conf contents: refused, nothing applied, boot file untouched.
long33=$(printf 'é%.0s' $(seq 16))x
bad_wifi=(
  "SSID=$long33|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=Casa\r|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=Ca\tsa|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=Ca\033[2Jsa|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=Casa\377|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=Casa|PASSPHRASE=short|COUNTRY=ES"
  "SSID=Casa|PASSPHRASE=contraseña|COUNTRY=ES"
  "SSID=Casa|PASSPHRASE=secret\tpass|COUNTRY=ES"
  "SSID=Casa|PASSPHRASE=$(printf 'p%.0s' $(seq 64))|COUNTRY=ES"
  "SSID=Casa|PASSPHRASE=secret-pass|COUNTRY=es"
  "SSID=Casa|PASSPHRASE=secret-pass|COUNTRY=ES;reboot"
  "SSID=Casa|PASSPHRASE=secret-pass|COUNTRY="
  "SSID=Casa|PASSPHRASE=secret-pass"
  "SSID=Casa|SSID=Evil|PASSPHRASE=secret-pass|COUNTRY=ES"
  "SSID=Casa|PASSPHRASE=secret-pass|COUNTRY=ES|EVIL=1"
  "SSID=Casa|PASSPHRASE=secret-pass|COUNTRY=ES|rm -rf /"
  "SSID=Ca\000sa|PASSPHRASE=secret-pass|COUNTRY=ES"
)
for c in "${bad_wifi[@]}"; do
  fresh
  printf '%b\n' "${c//|/\\n}" > "$t/data/wifi.conf"
  if run; then fail "accepted wifi.conf: $c"; fi
  [ ! -e "$t/chattorrent-hotspot.calls" ] || fail "applied wifi.conf: $c"
  grep -qx 'SSID=Old' "$t/boot-wifi.txt" || fail "a refused wifi.conf changed the boot file: $c"
done
# Too big; a symlink; a file the data directory's owner (here nobody) cannot read.
fresh
{ printf 'SSID=Casa\nPASSPHRASE=secret-pass\nCOUNTRY=ES\n'; head -c 2000 /dev/zero | tr '\0' '#'; } > "$t/data/wifi.conf"
if run; then fail "accepted a 2 KB wifi.conf"; fi
fresh
printf 'SSID=Casa\nPASSPHRASE=secret-pass\nCOUNTRY=ES\n' > "$t/secret"
ln -s "$t/secret" "$t/data/wifi.conf"
if run; then fail "followed a symlink"; fi
fresh
chmod 0600 "$t/secret"
chmod 0755 "$t"
ln "$t/secret" "$t/data/wifi.conf"
chown 65534:65534 "$t/data"
if run; then fail "read a root-only file the data directory's owner cannot"; fi
grep -q 'unreadable' "$t/out" || fail "no reason given: $(cat "$t/out")"
[ ! -e "$t/chattorrent-hotspot.calls" ] || fail "applied a file the data directory's owner cannot read"
echo "  ${#bad_wifi[@]} hostile wifi.conf contents, too big, symlink, unreadable: refused, nothing applied"

# Hostile box names.
bad_names=('Kitchen' '-box' 'box-' 'my box' 'box.local' 'box\nother' '$(id)' 'box;reboot' 'box"' "box'" 'caña'
  'chattorrent' 'localhost' "$(printf 'a%.0s' $(seq 64))" '')
for n in "${bad_names[@]}"; do
  fresh
  printf '%b\n' "$n" > "$t/data/boxname"
  if run; then fail "accepted box name: $n"; fi
  [ ! -e "$t/hostnamectl.calls" ] || fail "applied box name: $n"
  grep -q 'chattorrent-ab12' "$t/hosts" || fail "a refused name changed /etc/hosts: $n"
done
fresh
printf 'kitchen' > "$t/data/boxname" # no newline: not what the box writes
if run; then fail "accepted a name without its newline"; fi
echo "  ${#bad_names[@]} hostile box names: refused, nothing applied"
echo "test-apply-settings: ok"
