#!/bin/sh
# /usr/sbin/chattorrent-apply-settings: the root half of the owner's network settings.
# The box (unprivileged, sandboxed) validates what its owner chose on the settings page and
# writes it to its data directory; chattorrent-settings.path sees the files change and
# runs this, as root, through chattorrent-settings.service:
#   wifi.conf  SSID=, PASSPHRASE=, COUNTRY= (exactly these three lines)
#              -> chattorrent-hotspot, and the same values into the boot partition's
#                 chattorrent-wifi.txt, so that the next boot (chattorrent-boot-config)
#                 brings up the same network
#   boxname    the box's name, one DNS label -> hostnamectl, /etc/hosts' 127.0.1.1 line
# The files come from a less trusted user, so everything is checked again here: a regular
# file (no symlink) of at most 1 KiB without NUL bytes, read with the rights of the data
# directory's owner (setpriv), so a link planted there cannot make root read a file that
# user could not; SSID 1-32 bytes of UTF-8 without control characters; passphrase 8-63
# printable ASCII; country two capital letters; name 1-63 of a-z, 0-9, '-' (not first or
# last). Values are only ever passed as single arguments, never evaluated. A file equal to
# the one applied last (kept in the state directory) is not applied again: a rename alone
# must not restart the access point and drop every phone.
#
#   chattorrent-apply-settings [--data-dir DIR] [--boot-wifi FILE] [--hosts FILE] [--state-dir DIR]
set -eu
export LC_ALL=C

data=/var/lib/chattorrent
bootwifi=/boot/firmware/chattorrent-wifi.txt
hosts=/etc/hosts
state=/var/lib/chattorrent-settings

while [ $# -gt 0 ]; do
  case $1 in
    --data-dir) data=${2:?}; shift 2 ;;
    --boot-wifi) bootwifi=${2:?}; shift 2 ;;
    --hosts) hosts=${2:?}; shift 2 ;;
    --state-dir) state=${2:?}; shift 2 ;;
    *) echo "usage: chattorrent-apply-settings [--data-dir DIR] [--boot-wifi FILE] [--hosts FILE] [--state-dir DIR]" >&2; exit 2 ;;
  esac
done

log() { printf 'chattorrent-apply-settings: %s\n' "$*"; }
refused=0
refuse() { log "refused $*" >&2; refused=1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$state"
chmod 0700 "$state"

# fetch NAME: copies DATA/NAME into $tmp/NAME, read as the data directory's owner. Fails
# (after saying why) for a missing, non-regular, linked, oversized or NUL-holding file.
# (POSIX sh has no local variables: the helpers' names are theirs alone.)
fetch() {
  f=$data/$1
  [ -e "$f" ] || [ -L "$f" ] || return 1
  if [ -L "$f" ] || [ ! -f "$f" ]; then refuse "$1: not a regular file"; return 1; fi
  uid=$(stat -c %u -- "$data") gid=$(stat -c %g -- "$data")
  if ! setpriv --reuid="$uid" --regid="$gid" --clear-groups head -c 1025 -- "$f" > "$tmp/$1" 2>/dev/null; then
    refuse "$1: unreadable by the data directory's owner"
    return 1
  fi
  n=$(wc -c < "$tmp/$1")
  if [ "$n" -gt 1024 ]; then refuse "$1: larger than 1 KiB"; return 1; fi
  if [ "$(tr -d '\000' < "$tmp/$1" | wc -c)" -ne "$n" ]; then refuse "$1: NUL bytes"; return 1; fi
}

# unchanged NAME: $tmp/NAME is what was applied last.
unchanged() { cmp -s "$tmp/$1" "$state/$1"; }
applied() { cp "$tmp/$1" "$state/$1.new" && mv "$state/$1.new" "$state/$1"; }

valid_ssid() {
  [ "${#1}" -ge 1 ] && [ "${#1}" -le 32 ] || return 1
  case $1 in *[[:cntrl:]]*) return 1 ;; esac
  printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1
}
valid_pass() {
  [ "${#1}" -ge 8 ] && [ "${#1}" -le 63 ] || return 1
  case $1 in *[!\ -~]*) return 1 ;; esac
}
valid_country() { case $1 in [A-Z][A-Z]) return 0 ;; *) return 1 ;; esac; }
valid_name() {
  [ "${#1}" -ge 1 ] && [ "${#1}" -le 63 ] || return 1
  case $1 in -* | *- | *[!a-z0-9-]* | chattorrent | localhost) return 1 ;; esac
}

# sync_boot_wifi: the boot partition's file gets the applied values (its comments and
# other lines kept), so the next boot sets up the same access point.
sync_boot_wifi() {
  [ -f "$bootwifi" ] && [ ! -L "$bootwifi" ] || return 0
  grep -Ev '^(SSID|PASSPHRASE|COUNTRY)=' "$bootwifi" > "$tmp/boot" || true
  printf 'SSID=%s\nPASSPHRASE=%s\nCOUNTRY=%s\n' "$ssid" "$pass" "$country" >> "$tmp/boot"
  cp "$tmp/boot" "$bootwifi.new" && mv "$bootwifi.new" "$bootwifi"
  log "$bootwifi updated"
}

apply_wifi() {
  ssid='' pass='' country='' seen=''
  while IFS= read -r line; do
    k=${line%%=*} v=${line#*=}
    [ "$k" != "$line" ] || { refuse "wifi.conf: a line without '='"; return; }
    case " $seen " in *" $k "*) refuse "wifi.conf: $k twice"; return ;; esac
    seen="$seen $k"
    case $k in
      SSID) ssid=$v ;;
      PASSPHRASE) pass=$v ;;
      COUNTRY) country=$v ;;
      *) refuse "wifi.conf: unknown key"; return ;;
    esac
  done < "$tmp/wifi.conf"
  valid_ssid "$ssid" || { refuse "wifi.conf: SSID must be 1-32 bytes of UTF-8 without control characters"; return; }
  valid_pass "$pass" || { refuse "wifi.conf: PASSPHRASE must be 8-63 printable ASCII characters"; return; }
  valid_country "$country" || { refuse "wifi.conf: COUNTRY must be two capital letters"; return; }
  # The profile is saved even when it cannot come up now (no Wi-Fi device yet).
  if chattorrent-hotspot --ssid "$ssid" --password "$pass" --country "$country"; then
    log "Wi-Fi access point set (phones must join the new network)"
  else
    log "Wi-Fi profile saved; not up now (no Wi-Fi device?)"
  fi
  sync_boot_wifi
  applied wifi.conf
}

apply_name() {
  name=$(cat "$tmp/boxname")
  # One line: the name and a newline, nothing else.
  if [ "$(wc -l < "$tmp/boxname")" -ne 1 ] || ! valid_name "$name"; then
    refuse "boxname: must be one line, 1-63 of a-z, 0-9, '-' (not first or last)"
    return
  fi
  hostnamectl set-hostname "$name"
  if [ ! -f "$hosts" ]; then
    log "no $hosts: not updated"
  elif grep -q '^127\.0\.1\.1[[:space:]]' "$hosts"; then
    sed "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$name/" "$hosts" > "$tmp/hosts"
  else
    { cat "$hosts"; printf '127.0.1.1\t%s\n' "$name"; } > "$tmp/hosts"
  fi
  if [ -f "$tmp/hosts" ]; then cat "$tmp/hosts" > "$hosts"; fi
  log "hostname set to $name"
  applied boxname
}

# Until nothing is new: a file the box writes while this runs (the page saves the Wi-Fi and
# the name together) starts no second run of the service, so look again.
for round in 1 2 3; do
  again=false
  for name_ in wifi.conf boxname; do
    fetch "$name_" || continue
    if unchanged "$name_"; then
      [ "$round" -gt 1 ] || log "$name_: already applied"
      continue
    fi
    again=true
    case $name_ in
      wifi.conf) apply_wifi ;;
      boxname) apply_name ;;
    esac
  done
  # A refused file stays different from the applied one: do not retry it.
  if ! $again || [ "$refused" = 1 ]; then break; fi
done
exit "$refused"
