#!/usr/bin/env bash
# plot-ratios.sh — draw docs/benchmarks-ratios.png from a results JSON file
# (default bench/signals/results/latest.json): for every case, how many times
# faster galvani is than alien-signals and than @preact/signals-core.
# Needs gnuplot (Debian: gnuplot-nox) and /usr/bin/python3.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
IN="${1:-$HERE/signals/results/latest.json}"
OUT="${2:-$ROOT/docs/benchmarks-ratios.png}"
command -v gnuplot >/dev/null || { echo "plot-ratios.sh: install gnuplot-nox" >&2; exit 2; }
DATA="$(mktemp)"
trap 'rm -f "$DATA"' EXIT
/usr/bin/python3 - "$IN" > "$DATA" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    g, a, p = c["galvani"]["ms"], c["alien"]["ms"], c["preact"]["ms"]
    if g and a and p:
        print('"%s" %.3f %.3f' % (c["name"].replace(" - ", " "), a / g, p / g))
PY
gnuplot <<GP
set terminal pngcairo size 1200,680 font "DejaVu Sans,10" noenhanced
set bmargin 9
set rmargin 8
set output "$OUT"
set title "galvani speed-up on js-reactivity-benchmark (time of the JS library / time of galvani, same run)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -40 scale 0
set ylabel "times faster than ..."
set grid ytics
set yrange [0:*]
set key top left
set arrow from graph 0, first 3 to graph 1, first 3 nohead dt 2 lc rgb "#cc0000"
set label "3x target" at graph 0.01, first 3.25 tc rgb "#cc0000"
plot "$DATA" using 2:xtic(1) title "alien-signals 3.2.1" lc rgb "#4477aa", \
     "" using 3 title "@preact/signals-core 1.14.5" lc rgb "#ee8866"
GP
echo "wrote $OUT"
