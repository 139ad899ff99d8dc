#!/usr/bin/env bash
# deploy/qemu-test.sh runs the Go tests as a Raspberry Pi would: cross-compiled for arm64 and
# for armv6 (GOARM=6, the 32-bit Raspberry Pi OS baseline) and run under qemu-user
# (`go test -exec qemu-*-static`), inside a network namespace holding only loopback.
# Every package of `go list ./...` except the browser tests in web/e2e. deploy/test.sh runs it.
#
#   deploy/qemu-test.sh                 # both architectures
#   deploy/qemu-test.sh arm64           # only one (arm64 or armv6)
#   deploy/qemu-test.sh armv6 -run Foo  # further arguments go to `go test`
#
# Installs qemu-user-static when missing (root with apt-get); with CI=true a missing qemu
# fails the run, else it skips. binfmt_misc is not needed.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'qemu-test: %s\n' "$*" >&2; exit 1; }

arches=()
while (($#)) && [[ $1 == arm64 || $1 == armv6 ]]; do arches+=("$1"); shift; done
((${#arches[@]})) || arches=(arm64 armv6)

if ! command -v qemu-aarch64-static >/dev/null || ! command -v qemu-arm-static >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null \
      || die "apt-get install qemu-user-static failed"
  elif [ "${CI:-}" = true ]; then
    die "qemu-user-static is missing and cannot be installed (need root and apt-get)"
  else
    echo "qemu-test: SKIP: qemu-user-static is missing" >&2
    exit 0
  fi
fi

# Modules come in before the network goes away.
go mod download
mapfile -t pkgs < <(go list ./... | grep -v '/web/e2e\(/\|$\)')
if ((${#pkgs[@]} == 0)); then
  echo "qemu-test: no packages to test"
  exit 0
fi

# Sockets only on a private loopback (root: a plain new netns; else a user namespace too).
netns() {
  if [ "$(id -u)" = 0 ]; then
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
  else
    unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "$@"
  fi
}

for a in "${arches[@]}"; do
  case $a in
    arm64) env=(GOARCH=arm64) qemu=qemu-aarch64-static ;;
    armv6) env=(GOARCH=arm GOARM=6) qemu=qemu-arm-static ;;
  esac
  printf 'qemu-test: %s: go test under %s, %d packages\n' "$a" "$qemu" "${#pkgs[@]}"
  out=$(mktemp)
  if ! netns env CGO_ENABLED=0 GOOS=linux "${env[@]}" \
    go test -count=1 -timeout 10m -exec "$qemu" "$@" "${pkgs[@]}" 2>&1 | tee "$out"; then
    # qemu-user can deadlock a guest process between fork and exec (a lock of the emulator
    # held across a multithreaded guest's fork: seen once, net/mdns under arm64, 2026-12-07;
    # the slowest package takes ~70 s here). A package that timed out is run once more,
    # said aloud; any other failure, or a second timeout, fails the run.
    grep -q '^panic: test timed out' "$out" || die "go test failed on $a"
    mapfile -t failed < <(awk '$1 == "FAIL" && $2 ~ /\// {print $2}' "$out")
    ((${#failed[@]})) || die "go test failed on $a"
    printf 'qemu-test: %s: RERUN after a timeout under qemu-user: %s\n' "$a" "${failed[*]}"
    netns env CGO_ENABLED=0 GOOS=linux "${env[@]}" \
      go test -count=1 -timeout 10m -exec "$qemu" "$@" "${failed[@]}" \
      || die "go test failed on $a (rerun)"
  fi
  rm -f "$out"
done
echo "qemu-test: passed on ${arches[*]}"
