#!/usr/bin/env bash
# bench/plot-daemon.sh [RESULTS.json] [OUTDIR] -- the charts of one
# bench/run-daemon.sh run, drawn from that run's results file only:
#
#   updates.png  updates delivered per client per second   (seed | 100 jobs)
#   p99.png      p99 change->client latency, log scale      (seed | 100 jobs)
#   rss.png      server RSS                                 (idle | 100 jobs)
#
# against the number of clients, galvanid beside the peer (the seed's app)
# and the ceiling (bare h2o).  run-daemon.sh calls it at its end; by hand the
# default input is the newest bench/results/daemon-*.json and the default
# output bench/results/daemon-<date>-charts/.  Needs gnuplot (Debian's
# gnuplot-nox): a benchmark dependency only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
res=${1:-$(ls -t "$here"/results/daemon-*.json | head -n 1)}
outdir=${2:-${res%.json}-charts}
command -v gnuplot >/dev/null || { echo "plot-daemon.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$outdir"
dat=$(mktemp -d)
trap 'rm -rf "$dat"' EXIT
# $dat/SCENARIO-SERVER.dat: clients, updates/s per client, p99 ms, RSS MB
/usr/bin/python3 "$here/daemon-report.py" --plot-data "$res" "$dat"
run=$(basename "$res" .json)

# panel SCENARIO COLUMN TITLE YLABEL: the gnuplot lines of one panel, a line
# per server that has a number in COLUMN (a panel without any says so).
panel() {
    local scn=$1 col=$2 plots="" srv lt=0
    for srv in galvanid peer ceiling; do
        lt=$((lt + 1)) # the same colour for a server in every panel
        awk -v c="$col" '!/^#/ && $c != "NaN" {found = 1} END {exit !found}' "$dat/$scn-$srv.dat" || continue
        plots="$plots${plots:+, }'$dat/$scn-$srv.dat' using 1:$col with linespoints lt $lt lw 2 pt 7 title '$srv'"
    done
    echo "set title '$3'; set ylabel '$4'"
    if [ -n "$plots" ]; then
        echo "unset label 1; plot $plots"
    else
        echo "set label 1 'not measured in this run' at graph 0.5, 0.5 center; plot [0:1] [1:10] 100 notitle"
    fi
}

# chart FILE TITLE LOGY PANEL_ARGS... (two panels, 4 arguments each)
chart() {
    local file=$1 title=$2 logy=$3
    shift 3
    gnuplot <<GP
set terminal pngcairo size 1100,460 font "sans,10" noenhanced
set output "$outdir/$file"
set multiplot layout 1,2 title "$title ($run)"
set xlabel "clients"
set xrange [0:*]
set offsets 0, graph 0.05, graph 0.05, 0
set grid
set key top left opaque
$([ "$logy" = 1 ] && echo "set logscale y" || echo "set yrange [0:*]")
$(panel "$1" "$2" "$3" "$4")
$(panel "$5" "$6" "$7" "$8")
unset multiplot
GP
    echo "plot-daemon.sh: wrote $outdir/$file" >&2
}

chart updates.png "Updates delivered per client per second" 0 \
    seed 2 "seed: /ws, one job changing 10x/s" "updates/s per client" \
    jobs 2 "100 jobs changing 10x/s each" "job updates/s per client"
chart p99.png "p99 change-to-client latency" 1 \
    seed 3 "seed: /ws (no stamp in galvanid frames)" "ms" \
    jobs 3 "100 jobs changing 10x/s each" "ms"
chart rss.png "Server RSS" 0 \
    idle 4 "idle WebSocket clients" "MB" \
    jobs 4 "100 jobs changing 10x/s each (peak)" "MB"
