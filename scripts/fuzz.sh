#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz/ with clang (ASan + UBSan) into
# build-fuzz/ and runs each for a bounded time on a scratch copy of its seed
# corpus. Exits non-zero when a fuzzer finds a crash (the input is kept in
# build-fuzz/ and printed).
#
#   scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-fuzz
mkdir -p "$out"
flags=(-std=c++2b -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I include -I .)
status=0
for target in tests/fuzz/*_fuzz.cc; do
  name=$(basename "$target" .cc)
  # The harnesses are sans-I/O: they link only the protocol layer they test.
  case "$name" in
    h1_*) sources=(proto/h1/*.cc proto/http/*.cc) ;;
    tls_sniff_*) sources=(proto/tls_sniff/*.cc) ;;
    proxy_protocol_*) sources=(proto/proxy_protocol/*.cc) ;;
    h2_*) sources=(proto/h2/*.cc proto/http/*.cc) ;;
    admin_command_*) sources=(src/server/admin_command.cc) ;;
    access_log_*) sources=(src/accesslog/format.cc include/egw/address.cc) ;;
    *) echo "fuzz: no sources known for $name" >&2; exit 1 ;;
  esac
  libs=()
  case "$name" in
    h2_*)
      libs=($(pkg-config --libs libnghttp2))
      # The limits Debian backported into nghttp2 1.52 (CMake checks the same).
      for sym in max_continuations:MAX_CONTINUATIONS stream_reset_rate_limit:RESET_RATE_LIMIT; do
        grep -q "nghttp2_option_set_${sym%%:*}" /usr/include/nghttp2/nghttp2.h &&
          libs+=("-DEGW_NGHTTP2_${sym##*:}=1")
      done
      ;;
    admin_command_* | access_log_*) libs=(-lfmt) ;;
  esac
  clang++ "${flags[@]}" "${sources[@]}" "$target" "${libs[@]}" -o "$out/$name"
  corpus_name=${name%_fuzz}
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$corpus_name/." "$work/"
  echo "== fuzzing $name for ${seconds}s"
  if ! (cd "$out" && ./"$name" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="./$name-" "$work" 2>&1 | tail -12); then
    echo "FUZZ FAILURE in $name: see $out/$name-* for the input"
    status=1
  fi
  rm -rf "$work"
done
exit $status
