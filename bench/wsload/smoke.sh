#!/bin/sh
# bench_load_smoke (CTest label bench-smoke): the load tools against a real
# galvanid started here on an ephemeral port, and against the ceiling.
# 10 clients, 2 s each.  Asserts that every client connected, that frames
# arrived and parsed (jansson too: --strict) and that latencies were taken
# from the jobs' stamps -- never any speed: this runs on a busy CI machine.
#
# usage: smoke.sh GALVANID WSLOAD JOBLOAD BENCH_TICKER H2O_BCAST
set -eu
galvanid=$1 wsload=$2 jobload=$3 ticker=$4 bcast=$5
dir=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

fail() { echo "bench smoke: FAIL: $*" >&2; exit 1; }

# Waits for "<pattern>NNNN" in a log and prints NNNN (the port).
port_of() {
    i=0
    while [ $i -lt 100 ]; do
        p=$(sed -n "s/.*$2\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1; i=$((i + 1))
    done
    cat "$1" >&2
    return 1
}

# check JSON_FILE PYTHON_EXPR MESSAGE: the expression over `r` (the JSON line).
check() {
    /usr/bin/python3 -c "import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); sys.exit(0 if ($2) else 1)" "$1" \
        || { cat "$1" >&2; fail "$3"; }
}

"$galvanid" --listen 127.0.0.1:0 --db "$dir/g.db" --max-running 16 2>"$dir/galvanid.log" &
pids="$pids $!"
gpid=$!
port=$(port_of "$dir/galvanid.log" 'galvanid\.listening addr=[^ ]*:') || fail "galvanid did not start"
base="127.0.0.1:$port"

# Three jobs that stamp their changes (20 x 100 ms), and the demo job.
for i in 1 2 3; do
    curl -fsS -X POST "http://$base/jobs" -H 'Content-Type: application/json' \
        -d "{\"command\":[\"$ticker\",\"100\",\"20\"],\"name\":\"tick$i\"}" >/dev/null || fail "POST /jobs"
done
curl -fsS -X POST "http://$base/start" >/dev/null || fail "POST /start"

"$wsload" --url "ws://$base/ws/jobs" -c 10 -d 2 --settle 0.2 -p "$gpid" --strict --check --metrics --label smoke-jobs \
    >"$dir/jobs.json" || fail "wsload /ws/jobs"
check "$dir/jobs.json" "r['connected']==10 and r['errors']['total']==0 and r['latency_ms']['n']>0 and r['updates_per_client_s']['min']>0 and r['server']['rss_end_kb']>0" \
    "/ws/jobs: not every client connected and got stamped job updates"
# Reads carried the kernel's receive timestamp (not the first few: the kernel
# turns timestamping on in the background), and a frame never reached the
# socket after this process read it.
check "$dir/jobs.json" "r['reads']['total']>0 and r['reads']['stamped']*2>=r['reads']['total'] and r['read_latency_ms']['n']==r['latency_ms']['n'] and r['latency_ms']['p50']<=r['read_latency_ms']['p50'] and r['latency_ms']['max']<=r['read_latency_ms']['max']" \
    "/ws/jobs: reads without a kernel timestamp, or arrival after read"
check "$dir/jobs.json" "r['server']['writes_per_client_s']>0 and r['server']['flushes_per_s']>0 and r['server']['write_delay_ms']['p99'] is not None" \
    "/ws/jobs: galvanid's stream counters (--metrics) were not read"

"$wsload" --url "ws://$base/ws" -c 10 -d 2 --settle 0.2 -p "$gpid" --strict --check --label smoke-seed \
    >"$dir/seed.json" || fail "wsload /ws"
check "$dir/seed.json" "r['connected']==10 and r['errors']['total']==0 and r['frames_per_client_s']>0" \
    "/ws: not every client connected and got frames"

"$jobload" --url "http://$base" -n 20 -c 2 -w 30 -p "$gpid" --label smoke >"$dir/create.json" \
    || { cat "$dir/create.json" >&2; fail "jobload"; }
check "$dir/create.json" "r['created']==20 and r['complete_s'] is not None and r['transitions_per_s'] is not None" \
    "jobload: not every job was created and completed"

"$bcast" --port 0 --jobs 100 2>"$dir/bcast.log" &
pids="$pids $!"
bpid=$!
bport=$(port_of "$dir/bcast.log" 'port=') || fail "h2o_bcast did not start"
"$wsload" --url "ws://127.0.0.1:$bport/ws" --mode bcast -c 10 -d 2 --settle 0.2 -p "$bpid" --strict --check \
    --label smoke-ceiling >"$dir/bcast.json" || fail "wsload against h2o_bcast"
check "$dir/bcast.json" "r['connected']==10 and r['latency_ms']['n']>0 and r['updates_per_client_s']['min']>0" \
    "ceiling: no job updates"

# The target check: anything outside 127.0.0.0/8 is refused before connecting.
if "$wsload" --url "ws://192.0.2.1:80/ws" -c 1 -d 1 >/dev/null 2>&1; then
    fail "wsload accepted a target outside 127.0.0.0/8"
fi
echo "bench smoke: 4 runs passed, 0 failed"
