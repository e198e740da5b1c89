#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (scripts/setup.sh), builds
# Release into build/ and the sanitizer build (ASan + UBSan) into build-asan/,
# runs every test with ctest in both, then each libFuzzer target for a bounded
# time (EGW_FUZZ_SECONDS, default 60). Exits non-zero on any failure.
#
#   scripts/test.sh              everything
#   scripts/test.sh -R Timer     pass extra arguments to both ctest runs
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --deps
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

build() {  # dir type [extra cmake args]
  local dir=$1 type=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$dir"
}

# h2spec (HTTP/2 conformance) is built offline from Debian's Go packages by
# the shared tool script; test_http2.py skips it, saying so, when it is absent.
h2spec_script=../shared/tools/h2spec/build.sh
if [ -f "$h2spec_script" ]; then
  bash "$h2spec_script" build/tools/h2spec >/dev/null || echo "test: h2spec could not be built"
fi

status=0
echo "== Release build"
build build Release
echo "== Release tests"
(cd build && ctest --output-on-failure --timeout 900 "$@") || status=1

echo "== Sanitizer build (ASan + UBSan)"
build build-asan Sanitize -DEGW_BENCHMARKS=OFF
echo "== Sanitizer tests"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
(cd build-asan && ctest --output-on-failure --timeout 900 "$@") || status=1

echo "== Fuzzing (bounded)"
scripts/fuzz.sh "${EGW_FUZZ_SECONDS:-60}" || status=1

if [ $status -ne 0 ]; then
  echo "FAILED: see the output above"
else
  echo "All tests passed (Release and sanitizers)."
fi
exit $status
