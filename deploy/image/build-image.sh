#!/usr/bin/env bash
# deploy/image/build-image.sh builds a flashable arm64 Debian (bookworm) image for the
# Raspberry Pi 3/4 with ChatTorrent preinstalled, from standard Debian tools: debootstrap,
# Debian's linux-image-arm64 and raspi-firmware (Pi boot files and device trees), and our .deb.
#
#   sudo deploy/image/build-image.sh dist/chattorrent_<v>_arm64.deb chattorrent-arm64.img
#   sudo deploy/image/build-image.sh --smoke ...   # also boot it under qemu-system-aarch64
#
# MANUAL, NOT PART OF CI: needs root, the Debian archive, ~3 GB of disk and about an hour on
# 2 shared x86 cores (58 min measured from nothing: the arm64 half of debootstrap and the
# initramfs run under qemu-user emulation; docs/OPERATIONS.md has the figures).
# Needs: debootstrap, qemu-user-static and binfmt_misc (registered here if missing),
# e2fsprogs (mkfs.ext4 -d), dosfstools and mtools (FAT without mounting), fdisk (sfdisk),
# and for --smoke qemu-system-arm. No loop devices; /proc and /sys are mounted in the chroot
# while apt runs there.
#
# --smoke then runs deploy/image/smoke.sh on the image (what it proves is written there).
# WORK=DIR keeps the root file system in DIR: a second run skips debootstrap.
# See docs/OPERATIONS.md, "A ready-made image".
set -euo pipefail

smoke=false
if [ "${1:-}" = --smoke ]; then smoke=true; shift; fi
deb=${1:?usage: build-image.sh [--smoke] CHATTORRENT_ARM64_DEB OUTPUT_IMG}
out=${2:?usage: build-image.sh [--smoke] CHATTORRENT_ARM64_DEB OUTPUT_IMG}
MIRROR=${MIRROR:-}   # empty: debootstrap's default Debian archive
SUITE=${SUITE:-bookworm}
IMAGE_MB=${IMAGE_MB:-2048}
BOOT_MB=256
work=${WORK:-$(mktemp -d /var/tmp/chattorrent-image.XXXXXX)}
root=$work/rootfs
here=$(cd "$(dirname "$0")" && pwd)

die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$deb" ] || die "$deb not found"
for t in debootstrap mkfs.ext4 mkfs.vfat mcopy sfdisk; do
  command -v "$t" >/dev/null || die "$t missing (apt-get install debootstrap e2fsprogs dosfstools mtools fdisk qemu-user-static)"
done

# arm64 programs must run in the chroot: qemu-user through binfmt_misc, registered with the
# static interpreter itself (F: opened now, so it works inside the chroot too).
if [ "$(uname -m)" != aarch64 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  sed -e 's|:[^:]*:[^:]*$|:/usr/bin/qemu-aarch64-static:F|' /usr/lib/binfmt.d/qemu-aarch64.conf \
    > /proc/sys/fs/binfmt_misc/register
fi

# Stage 1: debootstrap a base that resolves (debootstrap cannot pick providers of virtual
# packages such as network-manager's default-dbus-system-bus and default-logind, so dbus
# and libpam-systemd come here by name and network-manager with apt in stage 2).
if [ ! -x "$root/usr/bin/apt-get" ]; then
  echo "build-image: debootstrap $SUITE arm64 into $root"
  debootstrap --arch=arm64 --variant=minbase --components=main,non-free-firmware \
    --include=systemd-sysv,udev,kmod,dbus,libpam-systemd,apt \
    "$SUITE" "$root" ${MIRROR:+"$MIRROR"}
fi

echo "build-image: configuring"
cat > "$root/etc/fstab" <<'FSTAB'
LABEL=RASPIROOT / ext4 rw,noatime 0 1
LABEL=RASPIFIRM /boot/firmware vfat rw,noatime,umask=0077 0 2
FSTAB
# raspi-firmware writes cmdline.txt from this: root by label, not /dev/mmcblk0p2.
echo 'ROOTPART=LABEL=RASPIROOT' > "$root/etc/default/raspi-firmware"
mkdir -p "$root/boot/firmware"
# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# Stage 2: apt in the chroot resolves the rest. Everything is here for the box to work with
# no network at all: the kernel and Pi boot files, NetworkManager (hotspot in shared mode
# with dnsmasq, Ethernet by DHCP), Wi-Fi (wpasupplicant, iw, rfkill, regulatory database,
# Broadcom firmware), SSH (off until a key is given), fake-hwclock (the clock survives
# reboots without a network), growing the root (fdisk, e2fsprogs), the microphone (alsa-utils).
# Package scripts (kernel, initramfs) want /proc and /sys: mounted for this stage only.
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
trap 'umount "$root/proc" "$root/sys" 2>/dev/null || true' EXIT
# The initramfs is made once, by the kernel's own postinst (update-initramfs -c): under
# emulation one takes ~40 minutes on 2 shared cores, and every package with an initramfs
# hook would otherwise trigger it again (update-initramfs -u, which "no" turns off; set back
# to "yes" below, for kernel updates on the box). --force-confold keeps this file.
mkdir -p "$root/etc/initramfs-tools"
printf 'update_initramfs=no\nbackup_initramfs=no\n' > "$root/etc/initramfs-tools/update-initramfs.conf"
rm -f "$root"/boot/initrd.img-*.new
# A run stopped half way (WORK= kept) leaves packages unconfigured: finish them first.
DEBIAN_FRONTEND=noninteractive chroot "$root" dpkg --force-confdef --force-confold --configure -a
chroot "$root" apt-get update -q
# --force-confold: keep our /etc/default/raspi-firmware (written above) without a prompt.
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  linux-image-arm64 raspi-firmware firmware-brcm80211 initramfs-tools \
  network-manager dnsmasq-base wpasupplicant iw rfkill wireless-regdb iproute2 \
  openssh-server fake-hwclock fdisk e2fsprogs util-linux alsa-utils ca-certificates
chroot "$root" apt-get clean
printf 'update_initramfs=yes\nbackup_initramfs=no\n' > "$root/etc/initramfs-tools/update-initramfs.conf"
rm -f "$root"/boot/*.dpkg-bak

cp "$deb" "$root/tmp/chattorrent.deb"
chroot "$root" dpkg -i /tmp/chattorrent.deb
rm -f "$root/tmp/chattorrent.deb"
[ "$(chroot "$root" systemctl is-enabled chattorrent.service)" = enabled ] || die "chattorrent.service not enabled"

# First boot and every boot (deploy/image/chattorrent-*).
install -m 0755 "$here/chattorrent-firstboot" "$here/chattorrent-boot-config" "$root/usr/local/sbin/"
install -m 0644 "$here/chattorrent-firstboot.service" "$here/chattorrent-boot-config.service" \
  "$here/chattorrent-smoke.service" "$root/etc/systemd/system/"
chroot "$root" systemctl enable chattorrent-firstboot.service chattorrent-boot-config.service \
  chattorrent-smoke.service
# SSH off until chattorrent-boot-config finds a key file; no host keys in the image.
chroot "$root" systemctl disable ssh.service
rm -f "$root"/etc/ssh/ssh_host_*
# One machine-id per box: empty here, systemd makes one at first boot (and treats that
# boot as the first: presets, ConditionFirstBoot=).
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
# Renamed at first boot to chattorrent-<suffix>.
echo chattorrent > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tchattorrent\n' > "$root/etc/hosts"
# The saved clock: fake-hwclock's file, set to the build's time (the card's clock never
# starts before it).
date -u '+%Y-%m-%d %H:%M:%S' > "$root/etc/fake-hwclock.data"
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"

# Regenerate /boot/firmware (cmdline.txt with the root label, kernel, initrd). The hook does
# its work only when called as dpkg would (DEB_MAINT_PARAMS=configure).
# shellcheck disable=SC2012 # kernel version directory names are plain (no spaces or newlines)
kver=$(ls "$root/lib/modules" | head -n 1)
chroot "$root" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$kver"
grep -q 'root=LABEL=RASPIROOT' "$root/boot/firmware/cmdline.txt" \
  || die "cmdline.txt does not find root by label: $(cat "$root/boot/firmware/cmdline.txt")"
install -m 0644 "$here/chattorrent-wifi.txt" "$root/boot/firmware/chattorrent-wifi.txt"
# Nothing more runs in the chroot: /proc and /sys must not be copied into the image.
umount "$root/proc" "$root/sys"
trap - EXIT

echo "build-image: file systems"
boot_img=$work/boot.vfat root_img=$work/root.ext4
rm -f "$boot_img" "$root_img"
mkfs.vfat -n RASPIFIRM -F 32 -C "$boot_img" $((BOOT_MB * 1024)) >/dev/null
mcopy -s -i "$boot_img" "$root"/boot/firmware/* ::/
mkfs.ext4 -q -L RASPIROOT -d "$root" "$root_img" "$((IMAGE_MB - BOOT_MB - 4))M"

echo "build-image: $out"
rm -f "$out"
truncate -s "${IMAGE_MB}M" "$out"
sfdisk -q "$out" <<PARTS
label: dos
start=4MiB, size=${BOOT_MB}MiB, type=c
start=$((4 + BOOT_MB))MiB, type=83
PARTS
dd if="$boot_img" of="$out" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$root_img" of="$out" bs=1M seek=$((4 + BOOT_MB)) conv=notrunc,sparse status=none
ls -l "$out"

$smoke || exit 0
exec "$here/smoke.sh" "$out"
