#!/bin/sh
# Runs the libFuzzer targets of tests/fuzz, one after the other.
#
#   sh tests/fuzz/run.sh SECONDS [TARGET...]     (targets: ws_router sdp media config; default all)
#
# Builds build-fuzz first when needed (clang-14, -Dfuzz=true, ASan + UBSan;
# packaging/install-deps.sh --test installs clang-14 and libclang-rt-14-dev):
#   CC=clang-14 meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
# then runs each target for SECONDS (-max_total_time) in one process, on its
# working corpus build-fuzz/corpus-TARGET (new inputs go there; the seed
# corpus tests/fuzz/corpus/TARGET is read too, so the two are merged), with
# the dictionary tests/fuzz/dict/TARGET.dict.  Crash, leak, timeout and
# out-of-memory inputs go to build-fuzz/artifacts-TARGET/; the whole output
# to build-fuzz/fuzz-TARGET.log.  At the end it prints, per target: wall and
# CPU time, executions, coverage (cov: edges, ft: features), corpus size and
# the artifacts written (also in build-fuzz/fuzz-summary.txt).
#
# A finding: reproduce it with build-fuzz/tests/fuzz/fuzz_TARGET FILE (or,
# without libFuzzer, build/tests/fuzz/replay_TARGET FILE), fix it, and copy
# FILE to tests/fuzz/corpus/TARGET/crash-WHAT so that the unit suite's
# replay (meson test --suite unit: fuzz-replay-*) keeps it fixed.
#
# Environment:
#   FUZZ_BUILD=DIR      build directory (default build-fuzz)
#   FUZZ_LOG=LEVEL      rtcsipd's log level in the targets (default debug, so
#                       that every log line's arguments are formatted; the
#                       targets' stderr then goes to /dev/null, -close_fd_mask=2)
#   FUZZ_ARGS="..."     more libFuzzer flags (e.g. -jobs=2 -workers=2, -use_value_profile=1)
set -eu

usage() {
  echo "usage: sh tests/fuzz/run.sh SECONDS [ws_router|sdp|media|config ...]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
seconds=$1
shift
case "$seconds" in ''|*[!0-9]*) usage ;; esac
targets=${*:-ws_router sdp media config}

src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"
build=${FUZZ_BUILD:-build-fuzz}
log_level=${FUZZ_LOG:-debug}

for t in $targets; do
  case "$t" in ws_router|sdp|media|config) ;; *) echo "run.sh: unknown target $t" >&2; usage ;; esac
done

if [ ! -f "$build/build.ninja" ]; then
  command -v clang-14 >/dev/null 2>&1 || { echo "run.sh: clang-14 missing (packaging/install-deps.sh --test)" >&2; exit 1; }
  CC=clang-14 meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$build" -j "${FUZZ_NINJA_JOBS:-2}" $(for t in $targets; do printf 'tests/fuzz/fuzz_%s ' "$t"; done)

summary="$build/fuzz-summary.txt"
: > "$summary"
timeout_s=25

for t in $targets; do
  exe="$build/tests/fuzz/fuzz_$t"
  corpus="$build/corpus-$t"
  artifacts="$build/artifacts-$t"
  logf="$build/fuzz-$t.log"
  timef="$build/fuzz-$t.time"
  mkdir -p "$corpus" "$artifacts"
  before=$(ls "$artifacts" | wc -l)
  close=""
  [ "$log_level" != error ] && close="-close_fd_mask=2"
  echo "== fuzz_$t: $seconds s (log: $logf)"
  set +e
  RTCSIPD_FUZZ_LOG="$log_level" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" \
    /usr/bin/time -o "$timef" -f '%e %U %S' \
    "$exe" -max_total_time="$seconds" -timeout="$timeout_s" -print_final_stats=1 \
      -dict="tests/fuzz/dict/$t.dict" -artifact_prefix="$artifacts/" $close ${FUZZ_ARGS:-} \
      "$corpus" "tests/fuzz/corpus/$t" > "$logf" 2>&1
  rc=$?
  set -e
  # the last status line: "#N  DONE   cov: C ft: F corp: K/SIZE ..." (or pulse/NEW when stopped by a finding)
  last=$(grep -E '^#[0-9]+' "$logf" | tail -n 1)
  execs=$(grep -E '^stat::number_of_executed_units:' "$logf" | awk '{print $2}' | tail -n 1)
  [ -n "$execs" ] || execs=$(printf '%s' "$last" | sed -E 's/^#([0-9]+).*/\1/')
  cov=$(printf '%s' "$last" | sed -nE 's/.* cov: ([0-9]+).*/\1/p')
  ft=$(printf '%s' "$last" | sed -nE 's/.* ft: ([0-9]+).*/\1/p')
  corp=$(printf '%s' "$last" | sed -nE 's/.* corp: ([0-9]+\/[0-9A-Za-z]+).*/\1/p')
  rss=$(grep -E '^stat::peak_rss_mb:' "$logf" | awk '{print $2}' | tail -n 1)
  # (time writes "Command exited with non-zero status N" first after a finding)
  read -r wall user sys <<EOF || true
$(tail -n 1 "$timef")
EOF
  cpu=$(awk -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { printf "%.0f", u + s }')
  new=$(ls -t "$artifacts" | head -n $(( $(ls "$artifacts" | wc -l) - before )) 2>/dev/null | tr '\n' ' ')
  if [ -n "$new" ]; then
    found="ARTIFACTS in $artifacts/: $new"
  elif [ "$rc" -ne 0 ]; then
    found="exit status $rc, no artifact (see $logf)"
  else
    found="nothing found"
  fi
  line=$(printf '%-10s wall %5ss  cpu %5ss  execs %9s  cov %5s  ft %6s  corpus %-11s rss %4sMB  %s' \
         "$t" "${wall:-?}" "$cpu" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$found")
  echo "$line"
  echo "$line" >> "$summary"
done

echo
echo "== summary ($summary)"
cat "$summary"
