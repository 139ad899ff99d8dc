#!/usr/bin/env bash
# deploy/test.sh runs every ChatTorrent test: Go vet/format checks, the JS unit tests, the Go
# tests (end-to-end browser tests included) inside a loopback-only network namespace, a short
# fuzz run, the cross-builds and packaging checks, and the Go tests under qemu-user for arm64
# and armv6. On a fresh Debian machine (as root) it first installs what the tests need.
# With CI=true nothing is skipped: a missing tool fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# Each tool the tests need and the Debian package that brings it.
declare -A pkg_of=(
  [chromium]=chromium
  [firefox-esr]=firefox-esr
  [WebKitWebDriver]=webkit2gtk-driver
  [Xvfb]=xvfb
  [qemu-aarch64-static]=qemu-user-static
  [transmission-show]=transmission-cli
  [node]=nodejs
  [npm]=npm
  [unshare]=util-linux
  [ip]=iproute2
  [dpkg-deb]=dpkg
  [systemd-analyze]=systemd
  [shellcheck]=shellcheck
)
missing=()
for tool in "${!pkg_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
done
# Firefox plays AAC (Chromium's audio/mp4 voice notes, TestEnginePairs) through FFmpeg's
# libavcodec, only a recommendation of firefox-esr: the newest this Debian offers.
if ! ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.'; then
  avcodec=$(apt-cache pkgnames libavcodec 2>/dev/null | grep -E '^libavcodec[0-9]+$' | sort -V | tail -n 1 || true)
  missing+=("${avcodec:-libavcodec}")
fi
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif [ "${CI:-}" = true ]; then
    die "missing ${missing[*]} and cannot install them (need root and apt-get)"
  else
    echo "test.sh: missing ${missing[*]}; tests that need them will skip" >&2
  fi
fi

# The Firefox e2e tests' driver (web/e2e/firefox): puppeteer-core from its lock file, only
# when missing (npm ci replaces node_modules; the browser is Debian's firefox-esr above).
if [ ! -d web/e2e/firefox/node_modules ] && command -v npm >/dev/null; then
  step "npm ci in web/e2e/firefox"
  (cd web/e2e/firefox && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

# Sockets are opened only inside a fresh network namespace holding nothing but loopback.
netns() {
  if [ "$(id -u)" = 0 ]; then
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
  else
    unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "$@"
  fi
}

step "go mod download"
go mod download

step "gofmt and go vet"
mapfile -t gofiles < <(git ls-files '*.go')
unformatted=$(gofmt -l "${gofiles[@]}")
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
go vet ./...

step "hygiene: go mod tidy -diff, staticcheck, shellcheck"
go mod tidy -diff
# Pinned: a newer staticcheck may find new things; bump it on purpose.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# Every shell script: *.sh and the extensionless ones with a shell shebang.
mapfile -t scripts < <(git ls-files | while IFS= read -r f; do
  case $f in
    *.sh) echo "$f" ;;
    *) [ -f "$f" ] && head -n 1 -- "$f" | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && echo "$f" ;;
  esac
done)
if command -v shellcheck >/dev/null; then
  shellcheck "${scripts[@]}"
else
  echo "test.sh: no shellcheck; the scripts are not checked" >&2
fi

step "go build for a Mac and for Windows (the README's first command on any laptop)"
GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go build ./...
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build ./...

step "node --test (pure JS modules)"
node --test web/jstest/*.test.mjs

step "go test (loopback-only network namespace, browsers included)"
# TestLANBoxByName adds a veth pair to the namespace: it runs alone afterwards, so that no
# other package's test sees an interface other than loopback while it runs.
netns go test -count=1 -timeout 30m -skip '^TestLANBoxByName$' ./...
step "go test: the box on a LAN of two network namespaces, by its mDNS name"
netns go test -count=1 -timeout 5m -run '^TestLANBoxByName$' ./web/e2e/

# 2 rooms x 30,000: each of the two authors brings 22,800 entries older than an hour, past
# the default AuthorHistoryPerHour (20,000), which the benchmarks must lift (noLimits)
step "the store's benchmarks run once, small (not timed here: one that cannot run fails)"
CHATTORRENT_BENCH_ROOMS=2 CHATTORRENT_BENCH_ENTRIES=30000 CHATTORRENT_BENCH_EXPORT_ENTRIES=2000 \
  netns go test -count=1 -run '^$' -bench . -benchtime 1x ./store/

step "fuzz the .torrent decoder"
netns go test -run '^$' -fuzz=FuzzDecode -fuzztime=15s ./net/torrent/

if [ -x deploy/check-packaging.sh ]; then
  step "cross-builds and packaging"
  deploy/check-packaging.sh
fi

if [ -x deploy/qemu-test.sh ]; then
  step "go test under qemu-user (arm64, armv6)"
  deploy/qemu-test.sh
fi

step "all tests passed"
