#!/usr/bin/env bash
# bench/run-cluster.sh — several galvanid nodes on one PostgreSQL (issue 18, "Bench";
# docs/cluster.md; docs/benchmarks.md, "Cluster"), against one node on SQLite.
#
#   bench/run-cluster.sh [--quick | --smoke] [--build DIR] [--only LIST] [--out DIR] [--lease S]
#                        [--max-running N]
#   bench/run-cluster.sh --report bench/results/cluster-DATE.json   # its table again
#
#   --quick   fewer jobs, 40 pause rounds, 150 WebSocket clients, 3 s windows: about 30 s
#   --smoke   the test suite's run (bench_cluster_smoke): a few jobs and clients, every path
#   --only    comma list of scenarios: jobs,addstart,pause,ws,floor
#   --lease   the nodes' --lease (default galvanid's, 15 s: a heartbeat every 5 s)
#   --max-running  per node (default 64)
#   --build   the build tree (default build-rel, configured Release and built if its tools are missing)
#   --out     where cluster-<date>.json / .txt go (default bench/results)
#
# Scenarios, each on a fresh database of one throwaway PostgreSQL that the script starts
# itself (tests/pg/pgserver.py: Debian's server, initdb in a temporary directory, run as
# the postgres user when run as root, fsync off):
#   jobs    N jobs (/bin/true, then `sleep 1`) POSTed round-robin to 1, 2, 3 nodes (one
#           jobload per node, all at once), --max-running 64 per node; the same with one node
#           on SQLite.  created / claimed / completed per second and the average add->start
#           latency come from the jobs' rows (created_at, started_at, finished_at)
#   addstart  one job at a time: POST to a node with free slots (201 once spawned), and to a
#           full node (another node claims it: started_at - created_at)
#   pause   pause / resume sent to node A for a job running on node C: answer time p50/p99
#   ws      20 bench_ticker jobs (10 changes/s each) on the 3 nodes; wsload clients on
#           /ws/jobs?v=2 spread over the 3 nodes, then all on node A
#   floor   fork+exec+wait of /bin/true alone (jobload --fork-floor)
# Every figure is printed with /proc/loadavg before and after it.  Nothing is pinned: the
# nodes, PostgreSQL and the load generators share the machine's cores.  Exit 1 if a job
# did not succeed, a node died, a control answer was wrong or a client did not connect.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build-rel
out=$here/results
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --quick) args+=(--quick) ;;
    --smoke) args+=(--smoke) ;;
    --build) build=$2; shift ;;
    --only) args+=(--only "$2"); shift ;;
    --max-running) args+=(--max-running "$2"); shift ;;
    --lease) args+=(--lease "$2"); shift ;;
    --report) exec /usr/bin/python3 "$here/cluster.py" --build "$build" --out "$out" --report "$2" ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run-cluster.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

py=/usr/bin/python3
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "run-cluster.sh: PostgreSQL's server is not installed (Debian package postgresql; scripts/deps)" >&2
    exit 1
fi
need="src/daemon/galvanid src/daemon/galvani-shim bench/jobload bench/wsload bench/bench_ticker"
missing=0
for t in $need; do [ -x "$build/$t" ] || missing=1; done
if [ $missing = 1 ]; then
    [ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 --target galvanid galvani-shim jobload wsload bench_ticker >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$py" "$here/cluster.py" --build "$build" --out "$out" "${args[@]}"
