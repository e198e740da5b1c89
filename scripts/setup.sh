#!/usr/bin/env bash
# Installs every Debian package ExpressGateway needs (bookworm, plus
# bookworm-backports for ngtcp2 1.x / nghttp3 1.x) and builds Release into
# build/. Idempotent: a second run installs nothing and rebuilds incrementally.
#
#   scripts/setup.sh            install + build
#   scripts/setup.sh --deps     install only
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev python3
  # libraries
  liburing-dev libwolfssl-dev libnghttp2-dev libgnutls28-dev
  libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev libfmt-dev libcli11-dev
  libxxhash-dev libre2-dev libsystemd-dev nlohmann-json3-dev
  # real peers for tests and benchmarks
  curl nghttp2-client nghttp2-server nghttp2-proxy wrk iperf3 python3-h2 python3-websockets python3-grpcio python3-pytest haproxy nginx-light libnginx-mod-stream
  openssl gnuplot-nox procps iproute2 util-linux
  systemd  # systemd-analyze verify for the unit file
  prometheus  # promtool check metrics, and a real scraper for /metrics
)
BACKPORTS=(libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev ngtcp2-client)

stamp=.setup-stamp
want="$(printf '%s\n' "${PACKAGES[@]}" "${BACKPORTS[@]}" | sha1sum | cut -c1-16)"

install_deps() {
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local missing=()
  for p in "${PACKAGES[@]}" "${BACKPORTS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "deb http://deb.debian.org/debian bookworm-backports main" |
        $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
    $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${BACKPORTS[@]}"
    # The packaged servers are started by the tests themselves, on port 0;
    # never leave the system-wide instances running on 80.
    $SUDO systemctl disable --now nginx haproxy nghttpx prometheus >/dev/null 2>&1 || true
  fi
  echo "$want" >"$stamp"
}

install_deps
if [ "${1:-}" = "--deps" ]; then exit 0; fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
