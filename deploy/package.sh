#!/usr/bin/env bash
# deploy/package.sh turns the binaries in dist/ (from deploy/build.sh) into one .deb per
# Debian architecture, with nfpm (deploy/packaging/nfpm.yaml), and refreshes dist/SHA256SUMS.
#
#   deploy/build.sh && deploy/package.sh          # all three .debs
#   deploy/package.sh arm64                       # only this Debian architecture
#
# Debian architecture <- binary:
#   arm64 <- chattorrent_linux_arm64  (64-bit Raspberry Pi OS, Pi 3/4/5/Zero 2)
#   armhf <- chattorrent_linux_armv6  (32-bit Raspberry Pi OS: its armhf is ARMv6+VFP, built
#            for the Pi 1 and Zero too, where a GOARM=7 binary refuses to start. Runs on every Pi.)
#   amd64 <- chattorrent_linux_amd64  (a PC or VM running Debian)
# nfpm is pinned to v2.45.2: installed once with `go install` into
# ~/.cache/chattorrent-tools/nfpm-v2.45.2 ($XDG_CACHE_HOME is honoured), or $NFPM names a binary.
set -euo pipefail
cd "$(dirname "$0")/.."

DIST=${DIST:-dist}
NFPM_VERSION=v2.45.2
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }

declare -A binary_of=([arm64]=arm64 [armhf]=armv6 [amd64]=amd64)
arches=("$@")
((${#arches[@]})) || arches=(arm64 armhf amd64)

# nfpm, pinned.
if [ -z "${NFPM:-}" ]; then
  tooldir=${XDG_CACHE_HOME:-$HOME/.cache}/chattorrent-tools/nfpm-$NFPM_VERSION
  NFPM=$tooldir/nfpm
  if [ ! -x "$NFPM" ]; then
    echo "package.sh: installing nfpm $NFPM_VERSION into $tooldir"
    GOBIN=$tooldir CGO_ENABLED=0 go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" \
      || die "cannot install nfpm $NFPM_VERSION"
  fi
fi

# The Debian version: upstream version, "-1" (the Debian revision: the package is not
# Debian-native, its changelog is changelog.Debian.gz). A tag v1.2.0 gives 1.2.0-1;
# `git describe` past a tag (v1.2.0-3-gabc1234) gives 1.2.0+3.gabc1234-1; an untagged
# tree (abc1234) gives 0.0.0~git.abc1234-1, which sorts below any release. "-dirty"
# becomes ".dirty".
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo unknown)}
v=${VERSION#v}
if [[ $v =~ ^[0-9]+\.[0-9]+ ]]; then
  DEB_VERSION=$(printf '%s' "$v" | sed -e 's/-/+/' -e 's/-/./g')-1
else
  DEB_VERSION="0.0.0~git.$(printf '%s' "$v" | sed -e 's/-/./g')-1"
fi
# Reproducible: every timestamp in the .deb (ar members, tar entries, the changelog) is the
# commit's time, so two builds of one commit are byte-identical.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH
MAINTAINER=${MAINTAINER:-ChatTorrent maintainers <chattorrent@users.noreply.github.com>}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# changelog.Debian.gz: one entry for this build, dated from the commit; gzip -n stores no
# name or time.
{
  printf 'chattorrent (%s) unstable; urgency=medium\n\n' "$DEB_VERSION"
  printf '  * Built from commit %s.\n\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} > "$tmp/changelog.Debian"
gzip -n -9 < "$tmp/changelog.Debian" > "$tmp/changelog.Debian.gz"
[ -f docs/OPERATIONS.md ] || die "docs/OPERATIONS.md missing (it goes into the package)"

for arch in "${arches[@]}"; do
  [ -n "${binary_of[$arch]:-}" ] || die "unknown Debian architecture $arch (want arm64, armhf or amd64)"
  BINARY="$DIST/chattorrent_linux_${binary_of[$arch]}"
  [ -x "$BINARY" ] || die "$BINARY missing: run deploy/build.sh ${binary_of[$arch]} first"
  deb="$DIST/chattorrent_${DEB_VERSION}_${arch}.deb"
  rm -f "$deb"
  # nfpm expands the environment only in some fields: fill the variables in ourselves.
  sed -e "s|\${DEB_ARCH}|$arch|g" -e "s|\${DEB_VERSION}|$DEB_VERSION|g" -e "s|\${BINARY}|$BINARY|g" \
    -e "s|\${MAINTAINER}|$MAINTAINER|g" -e "s|\${CHANGELOG}|$tmp/changelog.Debian.gz|g" \
    deploy/packaging/nfpm.yaml > "$tmp/nfpm.yaml"
  "$NFPM" package --config "$tmp/nfpm.yaml" --packager deb --target "$deb" > "$tmp/nfpm.log" 2>&1 \
    || { cat "$tmp/nfpm.log" >&2; die "nfpm failed for $arch"; }
  printf '  %-50s %6s KB\n' "$deb" "$(( $(stat -c %s "$deb") / 1024 ))"
done

(cd "$DIST" && sha256sum chattorrent_* > SHA256SUMS)
printf 'package.sh: wrote %s/SHA256SUMS\n' "$DIST"
