#!/usr/bin/env bash
# deploy/build.sh builds the chattorrent binary for every board we ship to, into dist/.
#
#   deploy/build.sh                 # the whole matrix: arm64 armv7 armv6 amd64
#   deploy/build.sh arm64 amd64     # only these
#   VERSION=v1.2.0 deploy/build.sh  # stamp a version instead of `git describe`
#
# Each binary is static (CGO_ENABLED=0), built with -trimpath, stripped (-s -w) and stamped
# through main.version and main.commit. dist/SHA256SUMS covers everything in dist/ named
# chattorrent_*. Environment: VERSION, COMMIT (override the stamps), PKG (the main package,
# default ./firmware), DIST (default dist), MAX_SIZE_MB (warn above it, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=${PKG:-./firmware}
DIST=${DIST:-dist}
MAX_SIZE_MB=${MAX_SIZE_MB:-20}

die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# The stamps. The VCS stamp Go would embed itself is off (-buildvcs=false, also this
# machine's GOFLAGS): ours is explicit, and works from a tarball or a Docker context too.
if [ -z "${VERSION:-}" ]; then
  VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
fi
if [ -z "${COMMIT:-}" ]; then
  COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
fi
export VERSION COMMIT

# target name -> GOARCH and GOARM. armv6 is what Raspberry Pi OS's 32-bit "armhf" means
# (ARMv6 + VFP, for the Pi 1 and Zero); armv7 is Debian's armhf and other ARMv7 boards.
declare -A goarch=([arm64]=arm64 [armv7]=arm [armv6]=arm [amd64]=amd64)
declare -A goarm=([armv7]=7 [armv6]=6)
all=(arm64 armv7 armv6 amd64)

targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=("${all[@]}")
  rm -rf "$DIST"
fi
mkdir -p "$DIST"

# The commit's time, not the wall clock: the build stays reproducible. The box's clock is
# never taken to be before it (net/archiver/clock.go).
if [ -z "${BUILT:-}" ]; then
  BUILT=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || true)
fi
# The project's release public key (hex): the box accepts only releases it signed
# (firmware/update, docs/OPERATIONS.md "Updates"). Without the file, updates are off.
RELEASE_KEY=$(tr -d '[:space:]' < deploy/release-key.pub 2>/dev/null || true)
ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.built=$BUILT -X main.releaseKey=$RELEASE_KEY"
printf 'build.sh: %s version=%s commit=%s\n' "$PKG" "$VERSION" "$COMMIT"

for t in "${targets[@]}"; do
  [ -n "${goarch[$t]:-}" ] || die "unknown target $t (want one of: ${all[*]})"
  out="$DIST/chattorrent_linux_$t"
  rm -f "$out"
  CGO_ENABLED=0 GOOS=linux GOARCH=${goarch[$t]} GOARM=${goarm[$t]:-} \
    go build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$out" "$PKG" \
    || die "go build for $t failed"
  # Static means no program interpreter (ld.so) in the ELF headers.
  if command -v readelf >/dev/null && grep -q 'program interpreter' <<<"$(readelf -lW "$out")"; then
    die "$out is dynamically linked"
  fi
  bytes=$(stat -c %s "$out")
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
  note=""
  if ((bytes > MAX_SIZE_MB * 1048576)); then
    note="  WARNING: above the ${MAX_SIZE_MB} MB goal"
  fi
  printf '  %-28s %6s MB  (%d bytes)%s\n' "$out" "$mb" "$bytes" "$note"
done

(cd "$DIST" && sha256sum chattorrent_* > SHA256SUMS)
printf 'build.sh: wrote %s/SHA256SUMS\n' "$DIST"
