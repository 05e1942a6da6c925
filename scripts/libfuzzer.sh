#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer: builds troupe-fuzz with every module instrumented
# (-sanitize=fuzzer) in .build/libfuzzer, then runs one target under libFuzzer's own loop.
#
#   bash scripts/libfuzzer.sh TARGET [libFuzzer flags...]    e.g. message/group_submit -runs=1000000
#   bash scripts/libfuzzer.sh --list                          the targets (troupe-fuzz --list, less conversation)
#
# The corpus libFuzzer grows is kept in fuzz-corpus/TARGET (slashes as underscores); crashing
# inputs are written as crash-* in the current folder. The first build takes several minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_path=.build/libfuzzer
# gold cannot link Swift objects instrumented this way; lld can.
swift build -c release --build-path "$build_path" --product troupe-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld -Xcc -fsanitize=fuzzer-no-link >&2
binary="$build_path/release/troupe-fuzz"

if [[ ${1:-} == --list ]]; then
    "$binary" --list | grep -v '^conversation$'
    exit 0
fi
target=${1:?usage: bash scripts/libfuzzer.sh TARGET [libFuzzer flags...] (or --list)}
shift
corpus="fuzz-corpus/${target//\//_}"
# Start from the same valid inputs as troupe-fuzz's own loop.
"$binary" --target "$target" --seeds-to "$corpus"
TROUPE_LIBFUZZER_TARGET="$target" exec "$binary" "$@" "$corpus"
