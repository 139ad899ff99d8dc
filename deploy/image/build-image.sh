#!/usr/bin/env bash
# deploy/image/build-image.sh builds a flashable arm64 Debian (bookworm) image for the
# Raspberry Pi 3/4 with ChatTorrent preinstalled, from standard Debian tools: debootstrap,
# Debian's linux-image-arm64 and raspi-firmware (Pi boot files and device trees), and our .deb.
#
#   sudo deploy/image/build-image.sh dist/chattorrent_<v>_arm64.deb chattorrent-arm64.img
#   sudo deploy/image/build-image.sh --smoke ...   # also boot it under qemu-system-aarch64
#
# MANUAL, NOT PART OF CI: needs root, the Debian archive, ~3 GB of disk and ~15 minutes on
# 2 cores (the arm64 half of debootstrap and initramfs run under qemu-user emulation).
# Needs: debootstrap, qemu-user-static and binfmt_misc (registered here if missing),
# e2fsprogs (mkfs.ext4 -d), dosfstools and mtools (FAT without mounting), fdisk (sfdisk),
# and for --smoke qemu-system-arm and curl. No loop devices or mounts are used.
#
# What --smoke proves: the rootfs boots a real systemd on arm64 (qemu's "virt" machine, the
# image's own kernel and initrd) and chattorrent.service answers HTTPS. It does not boot
# the Pi firmware path (bootcode.bin/start*.elf): qemu cannot run the Pi's GPU firmware.
# See docs/OPERATIONS.md, "A ready-made image".
set -euo pipefail

smoke=false
if [ "${1:-}" = --smoke ]; then smoke=true; shift; fi
deb=${1:?usage: build-image.sh [--smoke] CHATTORRENT_ARM64_DEB OUTPUT_IMG}
out=${2:?usage: build-image.sh [--smoke] CHATTORRENT_ARM64_DEB OUTPUT_IMG}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
IMAGE_MB=${IMAGE_MB:-2048}
BOOT_MB=256
work=${WORK:-$(mktemp -d /var/tmp/chattorrent-image.XXXXXX)}
root=$work/rootfs

die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$deb" ] || die "$deb not found"
for t in debootstrap mkfs.ext4 mkfs.vfat mcopy sfdisk; do
  command -v "$t" >/dev/null || die "$t missing (apt-get install debootstrap e2fsprogs dosfstools mtools fdisk qemu-user-static)"
done

# arm64 programs must run in the chroot: qemu-user through binfmt_misc.
if [ "$(uname -m)" != aarch64 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
fi

if [ ! -x "$root/usr/bin/dpkg" ]; then
  echo "build-image: debootstrap $SUITE arm64 into $root"
  debootstrap --arch=arm64 --variant=minbase --components=main,non-free-firmware \
    --include=systemd-sysv,udev,kmod,linux-image-arm64,raspi-firmware,initramfs-tools,iproute2,ifupdown,network-manager,dnsmasq-base,wireless-regdb,firmware-brcm80211 \
    "$SUITE" "$root" "$MIRROR"
fi

echo "build-image: configuring"
echo chattorrent > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tchattorrent\n' > "$root/etc/hosts"
cat > "$root/etc/fstab" <<'FSTAB'
LABEL=RASPIROOT / ext4 rw,noatime 0 1
LABEL=RASPIFIRM /boot/firmware vfat rw,noatime 0 2
FSTAB
# raspi-firmware writes cmdline.txt from this.
echo 'ROOTPART=LABEL=RASPIROOT' > "$root/etc/default/raspi-firmware"
# For --smoke: a static address on qemu's user network (no DHCP client in the image).
cat > "$root/etc/network/interfaces.d/qemu-eth0" <<'IFACES'
allow-hotplug eth0
iface eth0 inet static
  address 10.0.2.15/24
  gateway 10.0.2.2
IFACES
cp "$deb" "$root/tmp/chattorrent.deb"
chroot "$root" dpkg -i /tmp/chattorrent.deb
rm -f "$root/tmp/chattorrent.deb"
chroot "$root" systemctl is-enabled chattorrent.service
# Regenerate /boot/firmware (cmdline.txt with the root label, kernel, initrd).
# shellcheck disable=SC2012 # kernel version directory names are plain (no spaces or newlines)
chroot "$root" /etc/kernel/postinst.d/z50-raspi-firmware "$(ls "$root/lib/modules" | head -n 1)" || true

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

# Boot the root file system under qemu's generic arm64 machine, in a loopback-only network
# namespace, and wait for HTTPS through qemu's port forward.
echo "build-image: smoke boot under qemu-system-aarch64 (TCG, several minutes)"
# shellcheck disable=SC2012 # kernel version directory names are plain (no spaces or newlines)
kver=$(ls "$root/lib/modules" | head -n 1)
# shellcheck disable=SC2016 # the inner sh expands $1..$4 and its own variables
unshare -n sh -c '
  ip link set lo up
  work=$1 root=$2 kver=$3 img=$4
  qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 -nographic \
    -kernel "$root/boot/vmlinuz-$kver" -initrd "$root/boot/initrd.img-$kver" \
    -append "root=LABEL=RASPIROOT rw console=ttyAMA0 net.ifnames=0" \
    -drive file="$img",format=raw,if=virtio,snapshot=on \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:18443-:443 -device virtio-net-pci,netdev=n0,romfile= \
    > "$work/console.log" 2>&1 &
  qemu=$!
  for i in $(seq 1 120); do
    if curl -sk --max-time 5 https://127.0.0.1:18443/healthz; then echo; kill $qemu; exit 0; fi
    sleep 5
  done
  kill $qemu
  exit 1
' sh "$work" "$root" "$kver" "$out" || { tail -n 40 "$work/console.log" >&2; die "no HTTPS answer from the booted image"; }
echo "build-image: the image booted and chattorrent answered HTTPS"
