#!/usr/bin/env bash
# bench/run-daemon.sh — galvanid under load, beside the seed's app (the peer,
# bench/peer/seed_app.py) and a bare h2o + wslay server (the ceiling,
# bench/ceiling/h2o_bcast.c), every figure measured in the same run
# (issue 16, Targets 1-7; docs/benchmarks.md, "Daemon").
#
#   bench/run-daemon.sh [--quick] [--build DIR] [--only LIST] [--out DIR] [--charts DIR]
#
#   --quick   1,000 clients, 3 s windows, a smaller storm and creation run:
#             a few minutes in all
#   --only    comma list of scenarios: seed,jobs,storm,idle,http,create
#   --clients comma list of client counts for scenarios 1 and 2 (default 1000,5000,10000)
#   --charts  where the PNG charts go (default: bench/results/daemon-<date>-charts/)
#
# Scenarios (the server pinned to CPU 0, every load generator to CPU 1):
#   seed    N clients on /ws following the demo job (the peer's /ws; the
#           ceiling with one job), N in 1k/5k/10k
#   jobs    N clients on /ws/jobs while 100 jobs change 10x/s each (galvanid:
#           100 bench_ticker jobs stamping `::status t=<ms>`, on /ws/jobs?v=2,
#           the compact stream the dashboard and the CLI use; peer --jobs 100;
#           ceiling --jobs 100)
#   storm   1,000 clients following 100 jobs, then 10,000 more connecting at
#           2,000/s: when are the new ones all served, and what happens to
#           the existing ones' latency meanwhile
#   idle    server RSS at 0/1k/5k/10k idle WebSocket clients
#   http    GET /jobs/{id} with wrk on all three
#   create  POST /jobs of /bin/true with --max-running 64 (jobload): accepted
#           and completed per second, create latency, committed transitions/s;
#           and the fork+exec floor
#
# Writes bench/results/daemon-<date>.json (every run's JSON line) and .txt
# (the table), prints the table, and draws the charts from that .json with
# bench/plot-daemon.sh (when gnuplot is installed).  Targets are loopback only; every run
# is bounded in time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build
out=$here/results
quick=0
only="seed,jobs,storm,idle,http,create"
charts=""
clients_only=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --build) build=$2; shift ;;
    --only) only=$2; shift ;;
    --out) out=$2; shift ;;
    --charts) charts=$2; shift ;;
    --clients) clients_only=$2; shift ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "run-daemon.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

py=/usr/bin/python3 # Debian's: it has fastapi and uvicorn
for tool in wrk taskset curl; do
    command -v $tool >/dev/null || { echo "run-daemon.sh: $tool is missing (scripts/deps installs it)" >&2; exit 1; }
done
if [ ! -x "$build/bench/wsload" ] || [ ! -x "$build/src/daemon/galvanid" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j2 --target galvanid galvani-shim wsload jobload bench_ticker h2o_bcast >/dev/null
fi
galvanid=$build/src/daemon/galvanid
wsload=$build/bench/wsload
jobload=$build/bench/jobload
ticker=$build/bench/bench_ticker
bcast=$build/bench/h2o_bcast
peer=$here/peer/seed_app.py

if [ $quick = 1 ]; then
    clients="1000"; peer_clients="1000"; window=3; idle_counts="0 1000"
    storm_n=2000; storm_rate=1000; existing=500; wrk_s=3; create_n=1000
else
    clients="1000 5000 10000"; peer_clients="1000 2000"; window=10; idle_counts="0 1000 5000 10000"
    storm_n=10000; storm_rate=2000; existing=1000; wrk_s=10; create_n=5000
fi
[ -n "$clients_only" ] && clients=$(echo "$clients_only" | tr , ' ')
ramp_timeout=40

stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$out"
jsonl=$(mktemp)
tmp=$(mktemp -d)
srv_pid=""
bg_pids=""
cleanup() {
    for p in $bg_pids $srv_pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

on_gen() { taskset -c 1 "$@"; } # every load generator on CPU 1

free_port() {
    $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT: until something accepts on it (10 s at most)
    for _ in $(seq 100); do
        if $py -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "run-daemon.sh: nothing listens on $1" >&2
    return 1
}

# start_server KIND [JOBS]: galvanid | peer | ceiling, pinned to CPU 0.
# Sets srv_pid and port.
start_server() {
    local kind=$1 jobs=${2:-1}
    port=$(free_port)
    case $kind in
    galvanid)
        rm -rf "$tmp/g"; mkdir -p "$tmp/g"
        taskset -c 0 "$galvanid" --listen "127.0.0.1:$port" --db "$tmp/g/galvani.db" --max-running 200 \
            --max-connections 19000 --log-level warn 2>>"$tmp/galvanid.log" &
        ;;
    peer) taskset -c 0 $py "$peer" --port "$port" --jobs "$jobs" 2>>"$tmp/peer.log" & ;;
    ceiling) taskset -c 0 "$bcast" --port "$port" --jobs "$jobs" ${3:+--tick-ms "$3"} 2>>"$tmp/ceiling.log" & ;;
    esac
    srv_pid=$!
    wait_port "$port"
}

stop_server() {
    for p in $bg_pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    bg_pids=""
    # Jobs outlive galvanid: cancel the tickers first, or they (and their
    # supervisors, on the server's core) would go on through the next runs.
    if [ "$tickers" = 1 ]; then
        curl -s -o /dev/null -X POST "http://127.0.0.1:$port/jobs/[1-100]/cancel" || true
        tickers=0
    fi
    # uvicorn waits for its WebSocket handlers on SIGTERM, and they wait for
    # messages forever: give every server 3 s, then SIGKILL.
    kill "$srv_pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=""
    sleep 0.5 # let the kernel finish closing the last run's sockets
}

post() { curl -fsS -X POST "http://127.0.0.1:$port$1" "${@:2}" >/dev/null; }

# The demo job runs 100 steps and ends; keep one running for the whole window.
keep_demo() {
    (while :; do curl -s -o /dev/null -X POST "http://127.0.0.1:$port/start"; sleep 0.3; done) &
    bg_pids="$bg_pids $!"
}

# 100 galvanid jobs that each stamp a change every 100 ms for SECS seconds.
tickers=0
start_tickers() {
    local secs=$1 count
    count=$((secs * 10))
    tickers=1
    for i in $(seq 100); do
        post /jobs -H 'Content-Type: application/json' \
            -d "{\"command\":[\"$ticker\",\"100\",\"$count\",\"1\"],\"name\":\"tick$i\"}"
    done
}

run_ws() { # LABEL URL [wsload args...]: one wsload run, its JSON line kept
    local label=$1 url=$2
    shift 2
    echo "== $label" >&2
    on_gen "$wsload" --url "$url" -p "$srv_pid" --ramp-timeout $ramp_timeout --label "$label" "$@" \
        >>"$jsonl" 2>"$tmp/last.err" || true
    grep -E 'clients|updates|latency|errors|server' "$tmp/last.err" | sed 's/^/   /' >&2 || true
}

# The kernel's listen-queue counters (system-wide, absolute), one line each.
listen_counters() {
    nstat -asz TcpExtListenOverflows TcpExtListenDrops TcpExtSyncookiesSent TcpExtTCPReqQFullDrop 2>/dev/null |
        awk '/^TcpExt/ {print $1, $2}'
}

has() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# ---- 1. the seed's scenario ------------------------------------------------------------------
if has seed; then
    for n in $clients; do
        start_server galvanid; post /start; keep_demo
        run_ws "seed:galvanid:$n" "ws://127.0.0.1:$port/ws" -c "$n" -r 2000 -d $window --mode seed --metrics
        stop_server
        start_server ceiling 1
        run_ws "seed:ceiling:$n" "ws://127.0.0.1:$port/ws" -c "$n" -r 2000 -d $window --mode bcast
        stop_server
    done
    for n in $peer_clients; do
        start_server peer 1; post /start; keep_demo
        run_ws "seed:peer:$n" "ws://127.0.0.1:$port/ws" -c "$n" -r 2000 -d $window --mode seed
        stop_server
    done
fi

# ---- 2. 100 jobs x 10 updates/s on /ws/jobs --------------------------------------------------
if has jobs; then
    for n in $clients; do
        start_server galvanid; start_tickers $((ramp_timeout + window + 10))
        run_ws "jobs:galvanid:$n" "ws://127.0.0.1:$port/ws/jobs?v=2" -c "$n" -r 2000 -d $window --mode jobs --metrics
        stop_server
        start_server ceiling 100
        run_ws "jobs:ceiling:$n" "ws://127.0.0.1:$port/ws" -c "$n" -r 2000 -d $window --mode bcast
        stop_server
    done
    for n in $peer_clients; do
        start_server peer 100
        run_ws "jobs:peer:$n" "ws://127.0.0.1:$port/ws/jobs" -c "$n" -r 2000 -d $window --mode jobs
        stop_server
    done
fi

# ---- 3. connect storm while 100 jobs tick ----------------------------------------------------
if has storm; then
    storm_s=$((storm_n / storm_rate + 5))
    for kind in galvanid ceiling; do
        if [ $kind = galvanid ]; then
            start_server galvanid; start_tickers $((storm_s + 30)); path="/ws/jobs?v=2"; mode=jobs
        else
            start_server ceiling 100; path=/ws; mode=bcast
        fi
        # The existing clients measure across the whole storm...
        on_gen "$wsload" --url "ws://127.0.0.1:$port$path" --mode $mode -p "$srv_pid" -c $existing -r 2000 \
            --settle 0 -d $((storm_s + 3)) --label "storm-existing:$kind:$existing" >>"$jsonl" 2>"$tmp/existing.err" &
        existing_pid=$!
        sleep 2
        # ... while the storm connects (and the kernel counts SYNs its listen queue had no room for).
        listen_counters >"$tmp/listen.before"
        run_ws "storm-new:$kind:$storm_n" "ws://127.0.0.1:$port$path" --mode $mode -c $storm_n -r $storm_rate \
            -d 1 --settle 0 --src-addrs 32
        wait $existing_pid || true
        listen_counters | awk -v l="storm-kernel:$kind:$storm_n" 'NR == FNR {b[$1] = $2; next}
            {d = d sprintf("%s\"%s\":%d", d ? "," : "", $1, $2 - b[$1])}
            END {printf "{\"tool\":\"nstat\",\"label\":\"%s\",\"delta\":{%s}}\n", l, d}' "$tmp/listen.before" - >>"$jsonl"
        grep -E 'latency|errors' "$tmp/existing.err" | sed 's/^/   existing: /' >&2 || true
        stop_server
    done
fi

# ---- 4. idle connections: server RSS ---------------------------------------------------------
if has idle; then
    for kind in galvanid peer ceiling; do
        for n in $idle_counts; do
            [ "$n" -gt 2000 ] && [ $kind = peer ] && continue
            case $kind in
            galvanid) start_server galvanid ;;
            peer) start_server peer 1 ;;
            ceiling) start_server ceiling 1 3600000 ;; # a tick per hour: idle
            esac
            path=/ws/jobs; [ $kind = galvanid ] || path=/ws
            if [ "$n" = 0 ]; then
                rss=$(awk '/VmRSS/ {print $2}' "/proc/$srv_pid/status")
                echo "{\"tool\":\"wsload\",\"label\":\"idle:$kind:0\",\"clients\":0,\"server\":{\"rss_end_kb\":$rss}}" >>"$jsonl"
            else
                run_ws "idle:$kind:$n" "ws://127.0.0.1:$port$path" --mode jobs -c "$n" -r 4000 -d 1 --settle 2
            fi
            stop_server
        done
    done
fi

# ---- 5. HTTP GET /jobs/{id} ------------------------------------------------------------------
if has http; then
    for kind in galvanid ceiling peer; do
        start_server $kind 1
        if [ $kind = galvanid ]; then
            post /jobs -H 'Content-Type: application/json' -d '{"command":["/bin/true"],"name":"get-me"}'
            sleep 0.5
        fi
        echo "== http:$kind" >&2
        on_gen wrk -t1 -c64 -d${wrk_s}s --latency "http://127.0.0.1:$port/jobs/1" >"$tmp/wrk.txt" 2>&1 || true
        $py "$here/daemon-report.py" --wrk "http:$kind:64" "$tmp/wrk.txt" >>"$jsonl"
        tail -n 1 "$jsonl" | sed 's/^/   /' >&2
        stop_server
    done
fi

# ---- 6 and 7. job creation, transitions ------------------------------------------------------
if has create; then
    # Twice: supervisors from galvani-shim's fork server (the default), then
    # exec'd per job (GALVANI_SHIM names the binary), for the ratio.
    for how in galvanid galvanid-exec; do
        echo "== create:$how" >&2
        port=$(free_port)
        rm -rf "$tmp/g"; mkdir -p "$tmp/g"
        shim_env=""
        [ $how = galvanid-exec ] && shim_env="GALVANI_SHIM=$(dirname "$galvanid")/galvani-shim"
        env $shim_env taskset -c 0 "$galvanid" --listen "127.0.0.1:$port" --db "$tmp/g/galvani.db" --max-running 64 \
            --max-jobs 0 --log-level warn 2>>"$tmp/galvanid.log" &
        srv_pid=$!
        wait_port "$port"
        on_gen "$jobload" --url "http://127.0.0.1:$port" -n $create_n -c 16 -w 120 -p "$srv_pid" \
            --label "create:$how:$create_n" >>"$jsonl" 2>"$tmp/last.err" || true
        sed 's/^/   /' "$tmp/last.err" >&2
        stop_server
    done
    on_gen "$jobload" --fork-floor 1000 >>"$jsonl" 2>/dev/null || true
fi

# ---- the report ------------------------------------------------------------------------------
base=$out/daemon-$stamp
$py "$here/daemon-report.py" --assemble "$jsonl" --quick $quick --date "$stamp" >"$base.json"
$py "$here/daemon-report.py" --table "$base.json" | tee "$base.txt"
rm -f "$jsonl"
echo "run-daemon.sh: wrote $base.json and $base.txt" >&2
if command -v gnuplot >/dev/null; then
    "$here/plot-daemon.sh" "$base.json" "${charts:-$base-charts}" || echo "run-daemon.sh: the charts failed" >&2
else
    echo "run-daemon.sh: no charts (gnuplot is missing: apt-get install gnuplot-nox)" >&2
fi
