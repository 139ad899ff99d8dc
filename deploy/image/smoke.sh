#!/usr/bin/env bash
# deploy/image/smoke.sh boots an image made by build-image.sh under qemu-system-aarch64 and
# checks what its first boot did:
#   - the kernel command line is the image's own cmdline.txt (root=LABEL=RASPIROOT),
#   - the root file system grew (the image is booted from a copy made 1 GiB larger),
#   - /etc/machine-id was made at boot (not the image's empty one), and host keys too,
#   - the Wi-Fi hotspot profile exists, SSH is off (no key file), chattorrent.service is
#     active and /healthz answers,
#   - then, booted again with an SSH key file on the boot partition: SSH is on with that
#     key, the machine-id and the name are the first boot's,
#   - Ethernet is NetworkManager's and got its address by DHCP (qemu's user network has a
#     DHCP server), the clock is saved across boots (fake-hwclock), the GPIO udev rule is
#     there and the owner's settings applier (chattorrent-settings.path) is active.
#
#   sudo deploy/image/smoke.sh chattorrent-arm64.img
#
# MANUAL, NOT PART OF CI (minutes of TCG emulation). qemu's "virt" machine boots the image's
# own kernel and initrd from its boot partition: the Pi's GPU firmware path
# (start*.elf, config.txt) cannot run in qemu. The guest's network is qemu user networking
# with restrict=on: it reaches nothing outside. Needs qemu-system-arm, mtools.
set -euo pipefail
img=${1:?usage: smoke.sh IMAGE}
die() { printf 'smoke: %s\n' "$*" >&2; exit 1; }
for t in qemu-system-aarch64 mcopy mdir mtype sfdisk; do
  command -v "$t" >/dev/null || die "$t missing (apt-get install qemu-system-arm mtools fdisk)"
done
work=$(mktemp -d /var/tmp/chattorrent-smoke.XXXXXX)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; fi

# The boot partition (first) holds the kernel, the initrd and cmdline.txt.
start=$(sfdisk -J "$img" | sed -nE 's/.*"start": *([0-9]+).*/\1/p' | head -n 1)
fat="$img@@$((start * 512))"
# raspi-firmware names them vmlinuz-<version> and initrd.img-<version> (or without it).
kernel=$(mdir -b -i "$fat" :: | sed -n 's|^::/||p' | grep -m1 '^vmlinuz') || die "no kernel on the boot partition"
initrd=$(mdir -b -i "$fat" :: | sed -n 's|^::/||p' | grep -m1 '^initrd\.img') || die "no initrd on the boot partition"
mcopy -n -i "$fat" "::$kernel" "$work/vmlinuz"
mcopy -n -i "$fat" "::$initrd" "$work/initrd.img"
cmdline=$(mtype -i "$fat" ::cmdline.txt | tr -d '\r\n')
[[ $cmdline == *root=LABEL=RASPIROOT* ]] || die "cmdline.txt: $cmdline"

cp --sparse=always "$img" "$work/disk.img"
truncate -s +1G "$work/disk.img"
before_kb=$(($(stat -c %s "$img") / 1024))

# boot LOG: power the copy on until its smoke report is done, then off.
boot() {
  # The Pi's console is ttyS0/ttyAMA0 by cmdline.txt; qemu virt's is ttyAMA0.
  timeout 1200 qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 -nographic -no-reboot \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "$cmdline console=ttyAMA0 chattorrent.smoke" \
    -drive file="$work/disk.img",format=raw,if=virtio \
    -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile= \
    > "$1" 2>&1 < /dev/null &
  local qemu=$!
  until grep -q 'SMOKE done' "$1" 2>/dev/null; do
    kill -0 "$qemu" 2>/dev/null || { tail -n 40 "$1" >&2; die "qemu exited before the report"; }
    sleep 5
  done
  kill "$qemu"; wait "$qemu" 2>/dev/null || true
}
log=$work/console.log
val() { sed -nE "s/.*SMOKE $1=(.*)\r?$/\1/p" "$log" | tr -d '\r' | tail -n 1; }

echo "smoke: booting with the image's cmdline.txt: $cmdline"
SECONDS=0
boot "$log"
echo "smoke: report after ${SECONDS}s"
grep 'SMOKE ' "$work/console.log" | tr -d '\r' | sed 's/^.*SMOKE /  /'
[[ $(val cmdline) == *root=LABEL=RASPIROOT* ]] || die "not booted with cmdline.txt's root"
(( $(val root_kb) > before_kb )) || die "root file system not grown ($(val root_kb) KiB, image $before_kb KiB)"
[[ $(val machine_id) =~ ^[0-9a-f]{32}$ ]] || die "no machine-id made"
[ "$(val hostname)" = "chattorrent-$(val machine_id | cut -c1-4)" ] || die "box name not from the machine-id"
[ "$(val hotspot)" = 1 ] || die "no hotspot profile"
[ "$(val service)" = active ] || die "chattorrent.service not active"
[ "$(val ssh)" = disabled ] || die "SSH is on without a key file"
(( $(val hostkeys) > 0 )) || die "no SSH host keys made"
[[ $(val healthz) == *'"status":"ok"'* ]] || die "/healthz: $(val healthz)"
[[ $(val eth0) == 100* ]] || die "Ethernet not connected by NetworkManager: $(val eth0)"
(( $(val eth0_dhcp) > 0 )) || die "Ethernet's address did not come by DHCP"
[ "$(val clock)" = "enabled saved" ] || die "no saved clock (fake-hwclock): $(val clock)"
[ "$(val gpio_rule)" = 1 ] || die "no GPIO udev rule for the service user"
[ "$(val settings_path)" = active ] || die "chattorrent-settings.path: $(val settings_path)"
first_id=$(val machine_id) first_name=$(val hostname)

# Second boot, as an owner would: an SSH key on the boot partition turns SSH on; the
# machine-id and the name stay (first boot runs once).
echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPz1h2p0smokesmokesmokesmokesmokesmokesmoke0 smoke@test' > "$work/key"
mcopy -o -i "$work/disk.img@@$((start * 512))" "$work/key" ::ssh-authorized-keys
log=$work/console2.log
echo "smoke: booting again with ssh-authorized-keys on the boot partition"
boot "$log"
grep 'SMOKE ' "$log" | tr -d '\r' | sed 's/^.*SMOKE /  /'
[ "$(val ssh)" = enabled ] || die "SSH is not on with a key file"
[ "$(val root_keys)" = 1 ] || die "the key is not in /root/.ssh/authorized_keys"
[ "$(val machine_id)" = "$first_id" ] || die "the machine-id changed at the second boot"
[ "$(val hostname)" = "$first_name" ] || die "the box name changed at the second boot"
echo "smoke: passed in ${SECONDS}s"
