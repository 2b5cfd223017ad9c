#!/usr/bin/env bash
# tests/core/planted/run.sh — does the randomized differential test find the
# bugs it was written to hunt, without being told about them?
#
# Each *.patch here puts one bug that libgalvani once had back into a copy of
# the current core:
#   1-cleanup-frees-own-effect            an effect whose cleanup disposes it
#                                         runs again anyway (the plain build's
#                                         symptom of issue 13's first bug)
#   2-disposal-unlinks-during-validation  disposal drops the effect's links at
#                                         once, under a validation walk that is
#                                         still using them (the second bug)
#   3-batch-round-trip-changes            a batch that sets a signal to a new
#                                         value and back gives it a new
#                                         version anyway (the third bug)
# For each, the copy is built in the ASan+UBSan Debug configuration, the
# generator's seeds 1..SEEDS run (each program in its own process, so a crash
# is one failing seed), and the first failure is reported with the number of
# operations the generator executed up to it, then shrunk to a minimal program.
#
#   tests/core/planted/run.sh            all three, SEEDS=300 (the CI list's size)
#   SEEDS=2000 tests/core/planted/run.sh 2
#
# Not part of scripts/test: it builds three extra trees.  Exit status 1 if a
# planted bug was not found.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
seeds=${SEEDS:-300}
work=$(mktemp -d /tmp/galvani-planted.XXXXXX)
trap 'rm -rf "$work"' EXIT

missed=0
for patch in "$here"/*.patch; do
    name=$(basename "$patch" .patch)
    if [ $# -gt 0 ] && [[ " $* " != *" ${name%%-*} "* ]]; then
        continue
    fi
    echo "=== $name"
    tree="$work/$name"
    mkdir -p "$tree"
    (cd "$root" && tar --exclude='./build*' --exclude='./.git' -cf - .) | tar -xf - -C "$tree"
    patch -s -p1 -d "$tree" < "$patch"
    cmake -S "$tree" -B "$tree/build" -DCMAKE_BUILD_TYPE=Debug -DGALVANI_SANITIZE=ON \
        -DGALVANI_BUILD_EXAMPLES=OFF > "$tree/configure.log"
    cmake --build "$tree/build" -j "${JOBS:-2}" --target test_graph_random > "$tree/build.log"
    bin="$tree/build/tests/test_graph_random"

    out=$(GV_GRAPH_FORK=1 GV_GRAPH_SEEDS=$seeds "$bin" 2>&1 || true)
    first=$(printf '%s\n' "$out" | sed -n 's/^seed \([0-9]*\): .*/\1/p' | head -n1)
    nfail=$(printf '%s\n' "$out" | sed -n 's/.* programs .*, \([0-9]*\) failed.*/\1/p' | tail -n1)
    if [ -z "$first" ]; then
        echo "  NOT FOUND in seeds 1..$seeds"
        missed=1
        continue
    fi
    printf '%s\n' "$out" | grep "^seed $first:" | head -n1 | sed 's/^/  first failure: /'
    before=0
    if [ "$first" -gt 1 ]; then
        before=$(GV_GRAPH_SEEDS=$((first - 1)) "$bin" 2>&1 |
            sed -n 's/.* programs (\([0-9]*\) operations.*/\1/p' | tail -n1)
    fi
    op=$(printf '%s\n' "$out" | grep "^seed $first:" | head -n1 | sed -n 's/.*op #\([0-9]*\).*/\1/p')
    echo "  found by seed $first of $seeds ($nfail of $seeds seeds fail):" \
         "$((before + ${op:-0} + 1)) operations executed up to the failure" \
         "(${before} in the seeds before it${op:+, then op #$op})"
    if GV_GRAPH_SEED=$first GV_GRAPH_MINIMIZE="$tree/minimal" "$bin" > "$tree/minimize.log" 2>&1 ||
       [ -s "$tree/minimal" ]; then
        n=$(grep -c '^#[0-9]' "$tree/minimize.log" || true)
        echo "  minimal program ($n top-level operations):"
        grep -E '^(#[0-9]|  |})' "$tree/minimize.log" | head -n 40 | sed 's/^/    /'
    fi
done
exit $missed
