#!/bin/sh
# The one command that runs every test suite of rtcsipd from a fresh clone on
# Debian 12, as root:
#
#   tests/run-all.sh
#
# 1. installs the build and test dependencies (packaging/install-deps.sh --test)
# 2. installs the npm packages of the tests into tests/node_modules (npm ci),
#    and those of the demo page's build into gateway/www/node_modules
# 3. configures a fresh build directory (build-ci, or $BUILD_DIR) with -Dwerror=true
# 4. builds, and runs all meson test suites (unit, integration, browser)
# 5. prints "N passed, N failed" and exits non-zero when anything did not pass
#
# Extra arguments go to `meson test` (e.g. --suite integration, -v).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-build-ci}
cd "$top"

if [ "$(id -u)" = 0 ]; then
  "$top/packaging/install-deps.sh" --test
else
  echo "run-all: not root, not installing Debian packages (packaging/install-deps.sh --test)" >&2
fi

export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
if [ -f "$here/package-lock.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
else
  npm install --prefix "$here" --no-audit --no-fund --loglevel=error
fi
# The demo page's build dependencies: install-deps.sh installs them as root.
[ "$(id -u)" = 0 ] || npm ci --prefix "$top/gateway/www" --no-audit --no-fund --loglevel=error

rm -rf "${top:?}/$build"
meson setup "$top/$build" -Dwerror=true || { echo "run-all: meson setup failed" >&2; exit 1; }
ninja -C "$top/$build" || { echo "run-all: build failed (0 tests run)" >&2; exit 1; }

rc=0
meson test -C "$top/$build" --print-errorlogs "$@" || rc=$?

log="$top/$build/meson-logs/testlog.json"
if [ -f "$log" ]; then
  # One JSON object per line; "result" is OK, FAIL, SKIP, TIMEOUT, ERROR, EXPECTEDFAIL,
  # UNEXPECTEDPASS.  Everything that is not OK (or an expected failure) counts as failed.
  summary=$(python3 - "$log" <<'EOF'
import json, sys
passed = failed = 0
names = []
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        if t.get("result") in ("OK", "EXPECTEDFAIL"):
            passed += 1
        else:
            failed += 1
            names.append("%s (%s)" % (t.get("name"), t.get("result")))
for n in names:
    print("  not passed: " + n)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or passed == 0 else 0)
EOF
) || rc=1
  echo "$summary"
else
  echo "0 passed, 0 failed (no $log)"
  rc=1
fi
exit $rc
