#!/usr/bin/env bash
# fuzz/replay.sh — what CI runs for one fuzz target (CTest test fuzz_<name>).
#
#   replay.sh TARGET_EXE NAME FUZZ_SOURCE_DIR [LIBFUZZER_FLAGS...]
#
# Runs the target once over every committed input of NAME and nothing else:
# the seed corpus fuzz/corpus/NAME/ and the regression inputs
# fuzz/regressions/NAME/ (crashes found by fuzzing, kept once fixed;
# docs/fuzzing.md).  No mutation, no random input: the same inputs on every
# run, so a failure here is a real failure of the code on a known input, and
# the log names it.  Open-ended fuzzing is scripts/fuzz.
#
# The inputs are given to libFuzzer as files, not directories: it then
# executes each file once ("Running: <file>") and exits, whatever -runs says,
# and writes nothing back into the source tree.  A directory that does not
# exist (no regression inputs yet, a new target) is simply skipped, so adding
# a target or its first regression input needs no CMake change.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 TARGET_EXE NAME FUZZ_SOURCE_DIR [LIBFUZZER_FLAGS...]" >&2
    exit 2
fi
exe=$1 name=$2 src=$3
shift 3

shopt -s nullglob
inputs=()
for dir in "$src/corpus/$name" "$src/regressions/$name"; do
    for f in "$dir"/*; do
        # README files and the like are documentation, not inputs.
        [ -f "$f" ] && [[ "$(basename "$f")" != README* ]] && inputs+=("$f")
    done
done

if [ "${#inputs[@]}" -eq 0 ]; then
    echo "fuzz/replay.sh: no committed inputs for $name (fuzz/corpus/$name/ is empty or missing)" >&2
    exit 1
fi
echo "fuzz/replay.sh: $name: ${#inputs[@]} committed inputs"
exec "$exe" "$@" "${inputs[@]}"
