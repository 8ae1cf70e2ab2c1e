#!/bin/sh
# Installs what rtcsipd needs on Debian 12, as root.
#   packaging/install-deps.sh          build and run the daemon
#   packaging/install-deps.sh --test   also everything the test suites start
# Both then install the npm packages that the build bundles into the demo page
# (esbuild, JsSIP) into gateway/www/node_modules (npm ci).
set -eu
export DEBIAN_FRONTEND=noninteractive

build_pkgs="meson ninja-build pkg-config build-essential libglib2.0-dev
  libsofia-sip-ua-dev libsofia-sip-ua-glib-dev libwebsockets-dev libwebsockets-evlib-glib
  libnice-dev libsrtp2-dev libsystemd-dev libssl-dev openssl ca-certificates"
test_pkgs="sip-tester kamailio kamailio-extra-modules kamailio-tls-modules chromium systemd valgrind curl python3
  fonts-liberation procps iproute2 clang-14 libclang-rt-14-dev"

want="$build_pkgs"
[ "${1:-}" = "--test" ] && want="$want $test_pkgs"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want="$want nodejs npm"

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  # A fresh machine has no package lists; an old one may have stale ones.
  apt-get update -qq
  # Package scripts must not start services (kamailio) on a machine without systemd.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends $missing
  rm -f /usr/sbin/policy-rc.d
fi

# The demo page's build dependencies (gateway/www/meson.build needs them).
npm ci --prefix "$(cd "$(dirname "$0")/.." && pwd)/gateway/www" --no-audit --no-fund --loglevel=error
