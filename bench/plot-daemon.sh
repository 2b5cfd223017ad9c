#!/usr/bin/env bash
# bench/plot-daemon.sh [RESULTS.json] [OUTDIR] — PNG charts of a
# bench/run-daemon.sh run: job updates/s per client, p99 change->client
# latency and server RSS against the number of clients, galvanid beside the
# peer and the ceiling.  gnuplot from Debian's gnuplot-nox.
#
# Default input: the newest bench/results/daemon-*.json; default output: docs/.
# Writes daemon-updates.png, daemon-p99.png, daemon-rss.png.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
res=${1:-$(ls -t "$here"/results/daemon-*.json | head -n 1)}
outdir=${2:-$(dirname "$here")/docs}
command -v gnuplot >/dev/null || { echo "plot-daemon.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
dat=$(mktemp -d)
trap 'rm -rf "$dat"' EXIT
/usr/bin/python3 "$here/daemon-report.py" --plot-data "$res" "$dat"

# chart FILE TITLE YLABEL COLUMN SCENARIO...: one line per scenario and server
# (a server or scenario without data is left out rather than drawn empty).
chart() {
    local file=$1 title=$2 ylabel=$3 col=$4
    shift 4
    local plots=""
    for scn in "$@"; do
        for srv in galvanid peer ceiling; do
            [ "$(grep -vc '^#' "$dat/$scn-$srv.dat")" -gt 0 ] || continue
            plots="$plots${plots:+, }'$dat/$scn-$srv.dat' using 1:$col with linespoints title '$srv ($scn)'"
        done
    done
    [ -n "$plots" ] || { echo "plot-daemon.sh: no data for $file" >&2; return 0; }
    gnuplot <<GP
set terminal pngcairo size 900,520 font "sans,11"
set output "$outdir/$file"
set title "$title"
set xlabel "clients"
set ylabel "$ylabel"
set key outside right
set grid
set logscale x
plot $plots
GP
    echo "plot-daemon.sh: wrote $outdir/$file" >&2
}

chart daemon-updates.png "Job updates delivered per client per second" "updates/s per client" 2 seed jobs
chart daemon-p99.png "p99 change-to-client latency" "ms" 3 seed jobs
chart daemon-rss.png "Server RSS with idle WebSocket clients" "MB" 4 idle
