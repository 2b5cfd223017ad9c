#!/usr/bin/env bash
# run-signals.sh — galvani vs alien-signals vs @preact/signals-core on the
# cases of milomg/js-reactivity-benchmark, in one command.
#
#   bench/run-signals.sh                  full run, 3 repetitions per side
#   bench/run-signals.sh --quick          fewer timed runs per case, 1 repetition
#   bench/run-signals.sh --filter cellx   only cases whose name contains "cellx"
#   bench/run-signals.sh --case diamond   only that case (repeatable)
#   bench/run-signals.sh --reps 5         repetitions per side (median reported)
#   bench/run-signals.sh --galvani-only   skip the JS libraries
#   bench/run-signals.sh --smoke          correctness-only pass of every side
#   bench/run-signals.sh --callgrind [--case NAME]...
#                                         instruction counts of galvani's timed
#                                         phases under valgrind's callgrind
#
# Steps: build the C bench (Release, -O2 -g, in its own build directory),
# install the pinned npm packages if missing (npm ci from the committed
# package-lock.json), run each side --reps times (interleaved), then print
#   case | galvani ms | alien ms | preact ms | galvani/alien | allocs
# and write bench/signals/results/latest.json (median per case, every raw run,
# the machine) — only for a full run of every case on every side; quick,
# smoke or partial runs write results/raw/report.json instead (--out FILE
# overrides both).  Exit status 1 if any case failed a correctness check.
#
# Environment: BUILD_DIR (default build/bench-release), NODE (default node).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SIG="$HERE/signals"
JS="$SIG/js"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/bench-release}"
NODE="${NODE:-node}"
OUT=""

mode=full
reps=""
with_js=1
callgrind=0
passthrough=()
selected=()

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --reps) reps="$2"; shift ;;
    --filter) passthrough+=(--filter "$2"); shift ;;
    --case) passthrough+=(--case "$2"); selected+=("$2"); shift ;;
    --galvani-only) with_js=0 ;;
    --callgrind) callgrind=1 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$reps" ]; then
    if [ "$mode" = full ]; then reps=3; else reps=1; fi
fi
case "$reps" in ''|*[!0-9]*|0) echo "--reps needs a positive number" >&2; exit 2 ;; esac

# ------------------------------------------------------------------ build
# The top-level project when it exists (same flags as the library's own
# build), else bench/ on its own (it then compiles src/core itself).
src="$ROOT"
[ -f "$ROOT/CMakeLists.txt" ] || src="$ROOT/bench"
echo "== building galvani_signals_bench (Release -O2) in $BUILD_DIR" >&2
mkdir -p "$BUILD_DIR"
cmake -S "$src" -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" \
    -DGALVANI_SANITIZE=OFF \
    -DGALVANI_BUILD_TESTS=OFF \
    -DGALVANI_BUILD_EXAMPLES=OFF >"$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log" >&2; exit 1; }
cmake --build "$BUILD_DIR" --target galvani_signals_bench -j"$(nproc)" >&2
BIN="$(find "$BUILD_DIR" -type f -name galvani_signals_bench -perm -u+x | head -n1)"
[ -x "$BIN" ] || { echo "galvani_signals_bench not found in $BUILD_DIR" >&2; exit 1; }

# -------------------------------------------------------------- callgrind
if [ "$callgrind" = 1 ]; then
    command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
    if [ ${#selected[@]} -eq 0 ]; then
        selected=(deepPropagation diamond broadPropagation triangle mux cellx1000)
    fi
    cgdir="$SIG/results/callgrind"
    mkdir -p "$cgdir"
    printf '%-28s %16s\n' "case" "Ir (timed phase)"
    for name in "${selected[@]}"; do
        file="$cgdir/$(echo "$name" | tr -c 'A-Za-z0-9_-' '_').out"
        # Only the timed phases are counted: collection is off at start and
        # toggled on inside bench_timed_region (see bench_util.c).
        valgrind --tool=callgrind --callgrind-out-file="$file" \
            --collect-atstart=no --toggle-collect=bench_timed_region \
            "$BIN" --callgrind --case "$name" >"$file.stdout" 2>"$file.log" ||
            { echo "callgrind run of $name failed, see $file.log" >&2; exit 1; }
        ir="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$file" | head -n1)"
        printf '%-28s %16s\n' "$name" "${ir:-?}"
        grep -q '"ok":true' "$file.stdout" || echo "  (correctness check FAILED: $(cat "$file.stdout" | tail -n1))"
    done
    echo
    echo "Top functions per case: callgrind_annotate $cgdir/<case>.out | head -40"
    for name in "${selected[@]}"; do
        file="$cgdir/$(echo "$name" | tr -c 'A-Za-z0-9_-' '_').out"
        echo "--- $name"
        callgrind_annotate "$file" 2>/dev/null | grep -E '^ *[0-9,]+ .*:' | head -n 8 || true
    done
    exit 0
fi

# ------------------------------------------------------------ npm packages
if [ "$with_js" = 1 ]; then
    command -v "$NODE" >/dev/null || { echo "node not found (use --galvani-only)" >&2; exit 1; }
    if [ ! -d "$JS/node_modules/alien-signals" ] || [ ! -d "$JS/node_modules/@preact/signals-core" ]; then
        echo "== installing the pinned npm packages (npm ci)" >&2
        npm ci --prefix "$JS" --no-audit --no-fund >&2
    fi
fi

# -------------------------------------------------------------------- runs
raw="$SIG/results/raw"
if [ -z "$OUT" ]; then
    if [ "$mode" = full ] && [ ${#passthrough[@]} -eq 0 ] && [ "$with_js" = 1 ]; then
        OUT="$SIG/results/latest.json"
    else
        OUT="$raw/report.json"
    fi
fi
rm -rf "$raw"
mkdir -p "$raw"
flag=()
[ "$mode" = quick ] && flag=(--quick)
[ "$mode" = smoke ] && flag=(--smoke)

status=0
for r in $(seq 1 "$reps"); do
    echo "== repetition $r/$reps: galvani" >&2
    "$BIN" "${flag[@]}" "${passthrough[@]}" >"$raw/galvani.$r.jsonl" || status=1
    if [ "$with_js" = 1 ]; then
        for lib in alien preact; do
            echo "== repetition $r/$reps: $lib" >&2
            (cd "$JS" && "$NODE" --expose-gc bench.mjs --lib "$lib" "${flag[@]}" "${passthrough[@]}") \
                >"$raw/$lib.$r.jsonl" || status=1
        done
    fi
done

# ----------------------------------------------------------------- report
cpu="$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n1)"
cat >"$raw/machine.json" <<EOF
{"nproc": $(nproc), "cpu": "${cpu:-unknown}", "kernel": "$(uname -sr)",
 "cc": "$(${CC:-cc} --version 2>/dev/null | head -n1 | tr -d '"')",
 "mode": "$mode", "reps": $reps}
EOF
echo >&2
"$NODE" "$SIG/report.mjs" --out "$OUT" --meta "$raw/machine.json" "$raw"/*.jsonl || status=1
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}"
exit $status
