#!/usr/bin/env bash
# deploy/check-packaging.sh checks everything deploy/ ships; deploy/test.sh runs it in CI.
#   1. the cross-build matrix (deploy/build.sh): static, stamped, size of each binary
#   2. the .debs (deploy/package.sh): metadata, file lists, the binary each one carries,
#      maintainer scripts (syntax, and their systemctl calls against stubs), lintian (no
#      errors or warnings), reproducibility (a second build is byte-identical), and the
#      lifecycle in a cached Debian root (deploy/debian-root.sh; chroot): install, remove,
#      reinstall (still enabled), purge; then deploy/nspawn-test.sh boots that root under
#      systemd-nspawn (--private-network) and checks the running service (~40 s)
#   3. the systemd unit: `systemd-analyze verify` and `security --offline` (exposure <= 2.0)
#   4. the first-boot cloud-init user-data: `cloud-init schema`
#   5. deploy/hotspot.sh: syntax, --dry-run output, argument checks; the owner's settings
#      applier (deploy/packaging/test-apply-settings.sh: fakes, hostile files)
#   6. the Dockerfile: the properties we rely on (no Docker engine here to build it)
# Missing tools are installed when running as root with apt-get; otherwise their checks skip
# with a message, except with CI=true, where a missing tool fails the run.
# Exits non-zero at the first failure, with a line saying what failed.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_SIZE_MB=${MAX_SIZE_MB:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n-- check-packaging: %s (%ss)\n' "$*" "$SECONDS"; }
fail() { printf 'check-packaging: FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'check-packaging: SKIP: %s\n' "$*" >&2; }
# expect PATTERN FILE WHAT: fail unless FILE has a line matching PATTERN.
expect() { grep -Eq -- "$1" "$2" || { sed 's/^/    /' "$2" >&2; fail "$3"; }; }

# Tools: command -> Debian package.
declare -A pkg_of=([dpkg-deb]=dpkg [systemd-analyze]=systemd [cloud-init]=cloud-init [readelf]=binutils
  [lintian]=lintian [debootstrap]=debootstrap [systemd-nspawn]=systemd-container)
missing=()
for tool in "${!pkg_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || fail "apt-get install ${missing[*]}"
  elif [ "${CI:-}" = true ]; then
    fail "missing ${missing[*]} and cannot install them (need root and apt-get)"
  fi
fi
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "${CI:-}" = true ] && fail "$1 is missing"
  skip "$1 is missing: $2"
  return 1
}

step "shell syntax"
for f in deploy/*.sh deploy/packaging/*.sh deploy/image/*.sh; do
  [ -e "$f" ] || continue
  bash -n "$f" || fail "bash -n $f"
done
if command -v shellcheck >/dev/null; then
  shellcheck -S warning deploy/build.sh deploy/package.sh deploy/hotspot.sh deploy/check-packaging.sh \
    deploy/qemu-test.sh deploy/debian-root.sh deploy/nspawn-test.sh deploy/image/*.sh deploy/packaging/*.sh \
    || fail "shellcheck"
fi

step "cross-build matrix (deploy/build.sh)"
deploy/build.sh || fail "deploy/build.sh"
VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for t in arm64 armv7 armv6 amd64; do
  bin=dist/chattorrent_linux_$t
  [ -x "$bin" ] || fail "$bin was not built"
  go version -m "$bin" > "$tmp/buildinfo"
  expect 'CGO_ENABLED=0' "$tmp/buildinfo" "$bin: not built with CGO_ENABLED=0"
  expect '-trimpath=true' "$tmp/buildinfo" "$bin: not built with -trimpath"
  # -trimpath keeps -ldflags out of the build info: look for the stamped strings instead.
  grep -qaF -- "$VERSION" "$bin" || fail "$bin: version $VERSION is not stamped in"
  grep -qaF -- "$COMMIT" "$bin" || fail "$bin: commit $COMMIT is not stamped in"
  if grep -q 'program interpreter' <<<"$(readelf -lW "$bin")"; then fail "$bin is not static"; fi
  if grep -q '\.symtab' <<<"$(readelf -SW "$bin")"; then fail "$bin is not stripped"; fi
  size=$(stat -c %s "$bin")
  ((size <= MAX_SIZE_MB * 1048576)) || fail "$bin is $size bytes, above the ${MAX_SIZE_MB} MB goal (MAX_SIZE_MB raises it)"
done
grep -q AArch64 <<<"$(readelf -h dist/chattorrent_linux_arm64)" || fail "arm64 binary is not AArch64"
grep -q 'Machine:.*ARM$' <<<"$(readelf -h dist/chattorrent_linux_armv6)" || fail "armv6 binary is not 32-bit ARM"
(cd dist && sha256sum --quiet -c SHA256SUMS) || fail "dist/SHA256SUMS does not match"
# The native binary runs and reports its stamp (no sockets: own network namespace if we can).
if "dist/chattorrent_linux_$(go env GOARCH)" version > "$tmp/version" 2>&1; then
  expect "$VERSION" "$tmp/version" "\`chattorrent version\` does not print $VERSION"
  printf '  chattorrent version: %s\n' "$(head -n 1 "$tmp/version")"
else
  sed 's/^/    /' "$tmp/version" >&2
  fail "\`chattorrent version\` failed"
fi

step ".deb packages (deploy/package.sh)"
deploy/package.sh || fail "deploy/package.sh"
declare -A binary_of=([arm64]=arm64 [armhf]=armv6 [amd64]=amd64)
for arch in arm64 armhf amd64; do
  debs=(dist/chattorrent_*_"$arch".deb)
  deb=${debs[0]}
  [ -f "$deb" ] || fail "no .deb for $arch"
  dpkg-deb -I "$deb" > "$tmp/info" || fail "dpkg-deb -I $deb"
  dpkg-deb -c "$deb" > "$tmp/contents" || fail "dpkg-deb -c $deb"
  expect '^ Package: chattorrent$' "$tmp/info" "$deb: wrong Package"
  expect "^ Architecture: $arch\$" "$tmp/info" "$deb: wrong Architecture"
  expect '^ Version: [0-9]' "$tmp/info" "$deb: Version must start with a digit"
  for s in postinst prerm postrm; do expect "^ +[0-9]+ bytes, +[0-9]+ lines +\\* +$s " "$tmp/info" "$deb: no $s script"; done
  expect ' root/root .* \./usr/bin/chattorrent$' "$tmp/contents" "$deb: no /usr/bin/chattorrent"
  expect '^-rwxr-xr-x .* \./usr/bin/chattorrent$' "$tmp/contents" "$deb: /usr/bin/chattorrent not 0755"
  expect '\./usr/lib/systemd/system/chattorrent\.service$' "$tmp/contents" "$deb: no systemd unit"
  expect '\./usr/lib/sysctl\.d/60-chattorrent\.conf$' "$tmp/contents" "$deb: no sysctl drop-in"
  expect '\./usr/lib/sysusers\.d/chattorrent\.conf$' "$tmp/contents" "$deb: no sysusers.d file"
  expect '\./usr/sbin/chattorrent-hotspot$' "$tmp/contents" "$deb: no hotspot helper"
  expect '^-rwxr-xr-x .* \./usr/sbin/chattorrent-apply-settings$' "$tmp/contents" "$deb: no settings applier (0755)"
  expect '\./usr/lib/systemd/system/chattorrent-settings\.path$' "$tmp/contents" "$deb: no settings path unit"
  expect '\./usr/lib/systemd/system/chattorrent-settings\.service$' "$tmp/contents" "$deb: no settings service"
  expect '\./usr/lib/udev/rules\.d/60-chattorrent-gpio\.rules$' "$tmp/contents" "$deb: no GPIO udev rule"
  expect '\./etc/default/chattorrent$' "$tmp/contents" "$deb: no /etc/default/chattorrent"
  root=$tmp/root-$arch
  dpkg-deb -x "$deb" "$root"
  cmp -s "$root/usr/bin/chattorrent" "dist/chattorrent_linux_${binary_of[$arch]}" \
    || fail "$deb does not carry dist/chattorrent_linux_${binary_of[$arch]}"
  dpkg-deb -e "$deb" "$tmp/control-$arch"
  for s in postinst prerm postrm; do sh -n "$tmp/control-$arch/$s" || fail "$deb: $s has a syntax error"; done
  grep -q '/etc/default/chattorrent' "$tmp/control-$arch/conffiles" || fail "$deb: /etc/default/chattorrent is not a conffile"
done
printf '  %s\n' dist/*.deb
echo "  dpkg-deb -c (armhf):"
dpkg-deb -c dist/chattorrent_*_armhf.deb | awk '{ print "    " $1, $3, $6 }'
grep -q 'net.core.rmem_max = 8388608' "$tmp/root-amd64/usr/lib/sysctl.d/60-chattorrent.conf" \
  || fail "sysctl drop-in does not raise net.core.rmem_max"

# The maintainer scripts' systemctl calls, with stubs on PATH (no systemd runs here, so the
# scripts take their chroot/offline branch: enable on first install, never on upgrade).
stubs=$tmp/stubs
mkdir -p "$stubs"
for cmd in systemctl systemd-sysusers sysctl deb-systemd-helper deb-systemd-invoke; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n' "$cmd" "$tmp" > "$stubs/$cmd"
  chmod +x "$stubs/$cmd"
done
ctl=$tmp/control-amd64
PATH=$stubs:$PATH sh "$ctl/postinst" configure "" || fail "postinst configure (install) failed"
grep -qx 'systemd-sysusers chattorrent.conf' "$tmp/calls" || fail "postinst does not create the user"
grep -qx 'deb-systemd-helper enable chattorrent.service' "$tmp/calls" || fail "postinst does not enable the unit on install"
grep -qx 'deb-systemd-helper enable chattorrent-settings.path' "$tmp/calls" || fail "postinst does not enable the settings path unit"
if [ ! -d /run/systemd/system ] && grep -q '^sysctl' "$tmp/calls"; then
  fail "postinst runs sysctl without a running systemd (it would touch the build host in a chroot)"
fi
: > "$tmp/calls"
PATH=$stubs:$PATH sh "$ctl/prerm" remove || fail "prerm remove failed"
PATH=$stubs:$PATH sh "$ctl/postrm" remove || fail "postrm remove failed"
grep -qx 'deb-systemd-helper mask chattorrent.service' "$tmp/calls" || fail "postrm remove does not mask the unit"
grep -qx 'deb-systemd-helper mask chattorrent-settings.path' "$tmp/calls" || fail "postrm remove does not mask the settings path unit"
PATH=$stubs:$PATH sh "$ctl/postrm" purge || fail "postrm purge failed"
grep -qx 'deb-systemd-helper purge chattorrent.service' "$tmp/calls" || fail "postrm purge does not forget the unit"
grep -qx 'deb-systemd-helper purge chattorrent-settings.path' "$tmp/calls" || fail "postrm purge does not forget the settings path unit"

step ".deb lintian, reproducibility"
deb=$(ls dist/chattorrent_*_amd64.deb)
if have lintian "the .debs are not linted"; then
  for d in dist/chattorrent_*.deb; do
    # Errors fail; overrides (deploy/packaging/lintian-overrides) each carry their reason.
    lintian --fail-on error,warning "$d" > "$tmp/lintian" 2>&1 \
      || { sed 's/^/    /' "$tmp/lintian" >&2; fail "lintian $d"; }
  done
  echo "  lintian: no errors or warnings (overrides: deploy/packaging/lintian-overrides)"
fi
for f in copyright changelog.Debian.gz; do
  [ -f "$tmp/root-amd64/usr/share/doc/chattorrent/$f" ] || fail "$deb: no /usr/share/doc/chattorrent/$f"
done
cp "$deb" "$tmp/first.deb"
deploy/package.sh amd64 > /dev/null || fail "deploy/package.sh (second build)"
cmp -s "$tmp/first.deb" "$deb" || fail "two builds of $deb differ (not reproducible)"
echo "  reproducible: a second build of $deb is byte-identical"

step ".deb lifecycle in a Debian root (chroot): install, remove, reinstall, purge"
if [ "$(id -u)" = 0 ] && have debootstrap "no Debian root: lifecycle not tested" && have chroot "lifecycle not tested"; then
  cached=$(deploy/debian-root.sh) || fail "deploy/debian-root.sh"
  lroot=$tmp/lifecycle-root
  cp -a "$cached" "$lroot"
  cp "$deb" "$lroot/tmp/chattorrent.deb"
  in_root() { chroot "$lroot" "$@" >> "$tmp/lifecycle.log" 2>&1; }
  enabled() { systemctl --root="$lroot" is-enabled "${1:-chattorrent.service}" 2>/dev/null || true; }
  lfail() { sed 's/^/    /' "$tmp/lifecycle.log" >&2; fail "$*"; }
  in_root dpkg -i /tmp/chattorrent.deb || lfail "dpkg -i"
  [ "$(enabled)" = enabled ] || lfail "after install the unit is $(enabled), not enabled"
  [ "$(enabled chattorrent-settings.path)" = enabled ] || lfail "after install the settings path unit is not enabled"
  grep -Eq '^gpio:.*chattorrent' "$lroot/etc/group" || lfail "install: chattorrent not in group gpio"
  in_root dpkg -r chattorrent || lfail "dpkg -r"
  [ ! -e "$lroot/usr/bin/chattorrent" ] || lfail "dpkg -r left /usr/bin/chattorrent"
  in_root dpkg -i /tmp/chattorrent.deb || lfail "dpkg -i after dpkg -r"
  [ "$(enabled)" = enabled ] || lfail "reinstall after remove: the unit is $(enabled), not enabled"
  [ "$(enabled chattorrent-settings.path)" = enabled ] || lfail "reinstall after remove: the settings path unit is not enabled"
  # An administrator's disable survives a reinstall (upgrade path).
  in_root systemctl disable chattorrent.service
  in_root dpkg -i /tmp/chattorrent.deb || lfail "dpkg -i over itself"
  [ "$(enabled)" = disabled ] || lfail "reinstall re-enabled a unit the administrator disabled"
  in_root systemctl enable chattorrent.service
  in_root dpkg -P chattorrent || lfail "dpkg -P"
  if ls "$lroot"/etc/systemd/system/*/chattorrent{.service,-settings.path} >/dev/null 2>&1; then
    lfail "purge left $(ls "$lroot"/etc/systemd/system/*/chattorrent{.service,-settings.path} 2>/dev/null)"
  fi
  if chroot "$lroot" dpkg -s chattorrent >/dev/null 2>&1; then lfail "purge: dpkg still knows chattorrent"; fi
  echo "  install: enabled; remove + install: enabled; disabled + reinstall: disabled; purge: no symlinks left"
  rm -rf "$lroot"

  step "the unit under systemd: deploy/nspawn-test.sh (boot, READY=1, watchdog, /healthz, USB export)"
  if have systemd-nspawn "the unit is not started under systemd"; then
    deploy/nspawn-test.sh "$deb" || fail "deploy/nspawn-test.sh"
  fi
else
  [ "${CI:-}" = true ] && fail "the lifecycle test needs root and debootstrap"
  skip "lifecycle: needs root and debootstrap"
fi

step "smoke test: the packaged amd64 binary serves, and \`healthcheck\` (the Docker HEALTHCHECK) sees it"
if [ "$(go env GOARCH)" = amd64 ] && command -v unshare >/dev/null; then
  # In a network namespace holding only loopback: nothing the server opens reaches a LAN.
  if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
  # shellcheck disable=SC2016 # the inner sh expands $1, $2 and $d itself
  "${ns[@]}" sh -c '
    ip link set lo up || exit 1
    bin=$1 d=$2
    "$bin" serve --data-dir "$d/data" --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 \
      --ready-file "$d/ready" > "$d/serve.log" 2>&1 &
    pid=$!
    i=0
    while [ ! -s "$d/ready" ]; do
      i=$((i + 1))
      if [ $i -gt 150 ] || ! kill -0 $pid 2>/dev/null; then kill $pid 2>/dev/null; exit 1; fi
      sleep 0.1
    done
    CHATTORRENT_DATA_DIR=$d/data CHATTORRENT_HTTPS_ADDR=127.0.0.1:18443 "$bin" healthcheck
    rc=$?
    kill $pid
    wait $pid
    exit $rc
  ' sh "$tmp/root-amd64/usr/bin/chattorrent" "$tmp" > "$tmp/smoke" 2>&1 \
    || { sed 's/^/    /' "$tmp/smoke" "$tmp/serve.log" >&2; fail "the packaged binary did not serve or healthcheck failed"; }
  sed -e '/^$/d' -e 's/^/  healthcheck: /' "$tmp/smoke"
else
  skip "smoke test needs an amd64 host and unshare"
fi

step "systemd unit (systemd-analyze in a temporary root)"
# The resource limits of a Pi Zero 2 W (finding 9 of the 2026-12 security review): present,
# and the soft limits under the hard one.
unit=deploy/packaging/chattorrent.service
for key in MemoryHigh MemoryMax TasksMax LimitNOFILE; do
  expect "^$key=[0-9]+[KMG]?\$" "$unit" "$unit lacks $key="
done
expect '^Environment=GOMEMLIMIT=[0-9]+MiB$' "$unit" "$unit lacks the Go runtime's GOMEMLIMIT"
mb() { sed -nE "s/^$1=([0-9]+)(M|MiB)\$/\1/p" "$unit"; }
gomem=$(sed -nE 's/^Environment=GOMEMLIMIT=([0-9]+)MiB$/\1/p' "$unit")
(( gomem < $(mb MemoryHigh) && $(mb MemoryHigh) < $(mb MemoryMax) )) \
  || fail "$unit: want GOMEMLIMIT < MemoryHigh < MemoryMax (in MiB)"
echo "  resource limits: GOMEMLIMIT=${gomem}MiB MemoryHigh=$(mb MemoryHigh)M MemoryMax=$(mb MemoryMax)M"
if have systemd-analyze "unit not verified"; then
  root=$tmp/root-amd64
  # verify resolves the unit's dependencies (sysinit.target, ...) inside the root.
  cp -an /lib/systemd/system/. "$root/usr/lib/systemd/system/"
  # Any message is a failure: verify exits 0 on some parse errors ("..., ignoring").
  if ! systemd-analyze verify --man=no --root="$root" chattorrent.service > "$tmp/verify" 2>&1 \
     || [ -s "$tmp/verify" ]; then
    sed 's/^/    /' "$tmp/verify" >&2
    fail "systemd-analyze verify chattorrent.service"
  fi
  echo "  systemd-analyze verify chattorrent.service: no complaints"
  if ! systemd-analyze verify --man=no --root="$root" chattorrent-settings.path chattorrent-settings.service > "$tmp/verify" 2>&1 \
     || [ -s "$tmp/verify" ]; then
    sed 's/^/    /' "$tmp/verify" >&2
    fail "systemd-analyze verify chattorrent-settings.path chattorrent-settings.service"
  fi
  expect '^PathChanged=/var/lib/chattorrent/wifi\.conf$' "$root/usr/lib/systemd/system/chattorrent-settings.path" "the path unit does not watch wifi.conf"
  expect '^PathChanged=/var/lib/chattorrent/boxname$' "$root/usr/lib/systemd/system/chattorrent-settings.path" "the path unit does not watch boxname"
  echo "  systemd-analyze verify chattorrent-settings.path and .service: no complaints"
  systemd-analyze security --offline=yes --root="$root" chattorrent.service > "$tmp/security" 2>&1 || true
  tail -n 1 "$tmp/security" | sed 's/^/  /'
  exposure=$(sed -nE 's/.*Overall exposure level for chattorrent.service: ([0-9.]+).*/\1/p' "$tmp/security")
  [ -n "$exposure" ] || { cat "$tmp/security" >&2; fail "systemd-analyze security gave no exposure level"; }
  awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "systemd-analyze security: exposure $exposure, above 2.0"
  for key in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=[0-9]+s' 'ReadWritePaths=-/media'; do
    expect "^$key" "$unit" "$unit lacks $key"
  done
  # The sysusers.d file makes the user and its groups.
  if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$tmp/sysroot/etc"
    systemd-sysusers --root="$tmp/sysroot" "$root/usr/lib/sysusers.d/chattorrent.conf" 2>/dev/null \
      || fail "systemd-sysusers rejects chattorrent.conf"
    grep -q '^chattorrent:' "$tmp/sysroot/etc/passwd" || fail "sysusers.d: no chattorrent user"
    grep -Eq '^gpio:.*chattorrent' "$tmp/sysroot/etc/group" || fail "sysusers.d: chattorrent not in gpio"
    grep -Eq '^audio:.*chattorrent' "$tmp/sysroot/etc/group" || fail "sysusers.d: chattorrent not in audio"
    echo "  sysusers.d: user chattorrent, groups gpio and audio"
  fi
fi

step "first-boot cloud-init user-data"
if have cloud-init "user-data not validated"; then
  cloud-init schema --config-file deploy/firstboot/user-data || fail "cloud-init schema deploy/firstboot/user-data"
fi

step "hotspot.sh"
deploy/hotspot.sh --dry-run --ssid 'Chat Room' --password 'secret-pass' --country es > "$tmp/hotspot"
for want in 'nmcli connection add type wifi con-name chattorrent-hotspot' '802-11-wireless.mode ap' \
  'ipv4.method shared' 'ipv4.addresses 10.42.0.1/24' 'wifi-sec.key-mgmt wpa-psk' \
  'Chat\ Room' 'address=/chattorrent.local/10.42.0.1' 'address=/#/10.42.0.1' \
  'nmcli connection up chattorrent-hotspot' 'do_wifi_country ES'; do
  grep -qF -- "$want" "$tmp/hotspot" || { cat "$tmp/hotspot" >&2; fail "hotspot --dry-run lacks: $want"; }
done
deploy/hotspot.sh --dry-run --open --no-captive > "$tmp/hotspot"
if grep -qE 'wifi-sec|address=/#/' "$tmp/hotspot"; then fail "hotspot --open --no-captive still sets a password or captive DNS"; fi
if deploy/hotspot.sh --dry-run --password short >/dev/null 2>&1; then fail "hotspot accepts a 5-character password"; fi
# Into a file, not a pipe: grep -q exits at the first match and, under pipefail, the writer's SIGPIPE failed the check now and then.
deploy/hotspot.sh --dry-run --remove > "$tmp/hotspot"
grep -qF 'nmcli connection delete chattorrent-hotspot' "$tmp/hotspot" || fail "hotspot --remove"
echo "  dry-run output as expected"
if [ "$(id -u)" = 0 ]; then
  deploy/packaging/test-apply-settings.sh || fail "deploy/packaging/test-apply-settings.sh (the owner's settings applier)"
else
  skip "the settings applier test needs root (setpriv to another user)"
fi

step "Dockerfile (static checks)"
# shellcheck disable=SC2016 # $BUILDPLATFORM is a literal in the Dockerfile, matched as such
for want in '^FROM --platform=\$BUILDPLATFORM golang:1\.26' 'CGO_ENABLED=0' 'TARGETARCH' 'TARGETVARIANT' \
  '^USER [0-9]+' '^VOLUME \["?/data' '^EXPOSE ' '^HEALTHCHECK ' '-trimpath'; do
  grep -Eq -- "$want" Dockerfile || fail "Dockerfile lacks $want"
done
grep -qx '\.git' .dockerignore || fail ".dockerignore does not exclude .git"
echo "  Dockerfile has the multi-stage, static, non-root, healthcheck pieces"

step "packaging checks passed"
