#!/bin/sh
# Installs what rtcsipd needs on Debian 12, as root.
#   packaging/install-deps.sh          build and run the daemon
#   packaging/install-deps.sh --test   also everything the test suites start
#   packaging/install-deps.sh --bench  what --test installs, plus the reference gateway of
#                                      tests/bench/reference/ (Kamailio websocket module +
#                                      rtpengine in userspace: rtpengine-daemon, never the
#                                      `rtpengine` package, which pulls a kernel DKMS module)
# Both then install the npm packages that the build bundles into the demo page
# (esbuild, JsSIP) into gateway/www/node_modules (npm ci).
set -eu
export DEBIAN_FRONTEND=noninteractive

build_pkgs="meson ninja-build pkg-config build-essential libglib2.0-dev
  libsofia-sip-ua-dev libsofia-sip-ua-glib-dev libwebsockets-dev libwebsockets-evlib-glib
  libnice-dev libsrtp2-dev libnss3-dev libsystemd-dev libssl-dev openssl ca-certificates"
test_pkgs="sip-tester kamailio kamailio-extra-modules kamailio-tls-modules chromium systemd valgrind curl python3
  fonts-liberation procps iproute2 clang-14 libclang-rt-14-dev"

# --no-install-recommends keeps rtpengine-daemon's Recommends (recording daemon, utils) out;
# nothing here depends on rtpengine-kernel-dkms.
bench_pkgs="rtpengine-daemon kamailio-websocket-modules"

want="$build_pkgs"
case "${1:-}" in
  --test) want="$want $test_pkgs" ;;
  --bench) want="$want $test_pkgs $bench_pkgs" ;;
  "") ;;
  *) echo "usage: $0 [--test|--bench]" >&2; exit 2 ;;
esac
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want="$want nodejs npm"

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  # A fresh machine has no package lists; an old one may have stale ones.
  apt-get update -qq
  # Package scripts must not start services (kamailio, rtpengine-daemon) on a machine
  # without systemd, nor on one with it.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends $missing
  rm -f /usr/sbin/policy-rc.d
fi
# The package enables its unit for the next boot; the benchmark starts its own rtpengine,
# and one started at boot would hold the kernel-table setup and ports 2223/30000-40000.
if [ "${1:-}" = "--bench" ] && [ -e /etc/systemd/system/multi-user.target.wants/rtpengine-daemon.service ]; then
  systemctl disable rtpengine-daemon.service >/dev/null 2>&1 || true
fi

# The demo page's build dependencies (gateway/www/meson.build needs them).
npm ci --prefix "$(cd "$(dirname "$0")/.." && pwd)/gateway/www" --no-audit --no-fund --loglevel=error
