#!/usr/bin/env bash
# hotspot.sh makes the Raspberry Pi a Wi-Fi access point for ChatTorrent, with NetworkManager:
# phones join the Pi's own network, get an address from it (10.42.0.0/24, the Pi is 10.42.0.1),
# and every name they look up answers 10.42.0.1, so a phone's "sign in to network" check
# lands on the chat page (captive-portal style). Installed by the .deb as
# /usr/sbin/chattorrent-hotspot. Safe to run again: it updates what it made before.
#
#   chattorrent-hotspot [--ssid NAME] [--password PASS | --open] [--ifname wlan0]
#                       [--country CC] [--no-captive] [--dry-run]
#   chattorrent-hotspot --remove [--dry-run]
#
#   --ssid       network name (default ChatTorrent)
#   --password   WPA2 passphrase, 8-63 characters (default chattorrent: change it)
#   --open       no password at all (chat is end-to-end encrypted either way)
#   --ifname     Wi-Fi interface (default wlan0)
#   --country    Wi-Fi country code, e.g. ES (Raspberry Pi OS keeps Wi-Fi off until one is set)
#   --no-captive answer only chattorrent.local, not every name
#   --dry-run    print the commands and files instead of running/writing them
#   --remove     delete the hotspot connection and the DNS drop-in
set -euo pipefail

CON=chattorrent-hotspot
ADDR=10.42.0.1
DROPIN=/etc/NetworkManager/dnsmasq-shared.d/chattorrent.conf
ssid=ChatTorrent
password=chattorrent
open=false
ifname=wlan0
country=""
captive=true
dry_run=false
remove=false

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }
die() { printf 'hotspot: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --ssid) ssid=${2:?--ssid needs a value}; shift 2 ;;
    --password) password=${2:?--password needs a value}; shift 2 ;;
    --open) open=true; shift ;;
    --ifname) ifname=${2:?--ifname needs a value}; shift 2 ;;
    --country) country=${2:?--country needs a value}; shift 2 ;;
    --no-captive) captive=false; shift ;;
    --dry-run) dry_run=true; shift ;;
    --remove) remove=true; shift ;;
    -h|--help) usage ;;
    *) printf 'hotspot: unknown argument %s\n' "$1" >&2; usage ;;
  esac
done

if [ -z "$ssid" ] || [ "${#ssid}" -gt 32 ]; then die "--ssid must be 1-32 characters"; fi
if ! $open && { [ "${#password}" -lt 8 ] || [ "${#password}" -gt 63 ]; }; then
  die "--password must be 8-63 characters (or use --open)"
fi
[[ -z $country || $country =~ ^[A-Za-z]{2}$ ]] || die "--country must be a two-letter code"

# run prints a command in dry-run mode, else runs it.
run() {
  if $dry_run; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# put_file PATH CONTENT writes PATH only if its content differs; returns 0 if it changed.
put_file() {
  if $dry_run; then
    printf '+ write %s:\n%s\n' "$1" "$2" | sed '2,$s/^/    /'
    return 0
  fi
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
    return 1
  fi
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$2" > "$1.tmp" && mv "$1.tmp" "$1"
}

if ! $dry_run; then
  [ "$(id -u)" = 0 ] || die "run as root (or with --dry-run)"
  command -v nmcli >/dev/null || die "nmcli not found: this needs NetworkManager (Raspberry Pi OS Bookworm or later)"
fi

exists=false
if command -v nmcli >/dev/null && nmcli -t -f NAME connection show 2>/dev/null | grep -qx "$CON"; then
  exists=true
fi

if $remove; then
  if $exists || $dry_run; then run nmcli connection delete "$CON"; fi
  if [ -e "$DROPIN" ] || $dry_run; then run rm -f "$DROPIN"; fi
  exit 0
fi

if [ -n "$country" ]; then
  if command -v raspi-config >/dev/null || $dry_run; then
    run raspi-config nonint do_wifi_country "${country^^}"
  else
    run iw reg set "${country^^}"
  fi
fi
if command -v rfkill >/dev/null || $dry_run; then
  run rfkill unblock wifi
fi

# DNS for the hotspot. NetworkManager starts dnsmasq for a "shared" connection and reads
# this directory; address=/#/ answers every name with the Pi, so phones' connectivity checks
# reach the firmware's plain-HTTP listener, which redirects to the box's own name.
# The box's name is chattorrent-<6 hex>.local (its certificate covers only that, not the
# generic chattorrent.local that people type): phones that do not resolve mDNS (Android
# browsers) must find it by DNS too, so every .local name is the Pi on its own hotspot.
dns="# Written by chattorrent-hotspot: DNS on the ChatTorrent hotspot.
address=/chattorrent.local/$ADDR
address=/local/$ADDR"
if $captive; then
  dns="$dns
# Every other name too (captive portal): phones land on the chat page.
address=/#/$ADDR"
fi
dns_changed=false
if put_file "$DROPIN" "$dns"; then dns_changed=true; fi

# One connection profile, created or brought up to date.
settings=(
  connection.interface-name "$ifname"
  connection.autoconnect yes
  connection.autoconnect-priority 100
  802-11-wireless.ssid "$ssid"
  802-11-wireless.mode ap
  802-11-wireless.band bg
  802-11-wireless.channel 6
  ipv4.method shared
  ipv4.addresses "$ADDR/24"
  ipv6.method disabled
)
if $open; then
  if $exists; then settings+=(remove 802-11-wireless-security); fi
else
  settings+=(
    wifi-sec.key-mgmt wpa-psk
    wifi-sec.psk "$password"
    wifi-sec.proto rsn
    wifi-sec.pairwise ccmp
    wifi-sec.group ccmp
    # Protected management frames break the access point on the Pi's brcmfmac Wi-Fi.
    wifi-sec.pmf disable
  )
fi

if $exists; then
  run nmcli connection modify "$CON" "${settings[@]}"
else
  run nmcli connection add type wifi con-name "$CON" ifname "$ifname" ssid "$ssid" "${settings[@]}"
  dns_changed=true
fi

# (Re)activate so a changed profile or DNS drop-in takes effect (dnsmasq reads it on start).
active=false
if command -v nmcli >/dev/null && nmcli -t -f NAME connection show --active 2>/dev/null | grep -qx "$CON"; then
  active=true
fi
if $dns_changed || $exists || ! $active; then
  run nmcli connection up "$CON"
fi

if ! $dry_run; then
  printf 'hotspot: "%s" is up on %s; phones open http://%s/ or https://chattorrent.local/\n' \
    "$ssid" "$ifname" "$ADDR"
  if ! $open && [ "$password" = chattorrent ]; then
    echo "hotspot: the password is the default one; set your own with --password" >&2
  fi
fi
