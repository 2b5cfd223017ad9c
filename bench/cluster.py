#!/usr/bin/python3
"""bench/cluster.py — the driver of bench/run-cluster.sh (issue 18, "Bench"): several galvanid nodes on one
throwaway PostgreSQL (tests/pg/pgserver.py), against one node on SQLite as the baseline.

Scenarios (each on a fresh database, nodes started and stopped by this script):
  jobs    N jobs created round-robin over 1, 2, 3 nodes (one jobload per node, all at once; --max-running 64
          each), `/bin/true` and `sleep 1`; the same with one node on SQLite.  created / claimed / completed
          per second are read from the jobs' own rows afterwards (created_at, started_at, finished_at: the
          store's clock, one machine), so they do not depend on polling; avg add->start is started_at -
          created_at.
  addstart one job at a time (low rate): POST to a node with free slots, 201 once spawned; POST to a full
          node, claimed and started by another (started_at - created_at).
  pause   a `sleep 3600` job on node C; POST /jobs/ID/pause and /resume sent to node A, one at a time on one
          keep-alive connection: each answer comes once C applied it.  p50/p99/max.
  ws      20 bench_ticker jobs (::status t=<ms> every 100 ms) spread over the 3 nodes; wsload clients on
          /ws/jobs?v=2 spread evenly over the 3 nodes (one wsload per node, at once), then the same number all
          on node A.  updates/s per client and change->client latency p50/p99.
  floor   jobload --fork-floor: posix_spawn + waitpid of /bin/true, one at a time.

Every figure carries /proc/loadavg read just before and just after it.  Prints the table, writes the JSON
lines and the table under --out.  Nothing is pinned to a CPU: 3 nodes, PostgreSQL and the load generators
share the machine's cores."""
import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "pg"))
from pgserver import PgServer  # noqa: E402

DEADLINE = 60.0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def http_req(port, method, path, body=None, conn=None, timeout=DEADLINE):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    resp = conn.getresponse()
    payload = resp.read()
    if own:
        conn.close()
    try:
        return resp.status, json.loads(payload) if payload else None
    except ValueError:
        return resp.status, payload


class Node:
    def __init__(self, tools, workdir, name, store, max_running, lease):
        self.name, self.workdir = name, workdir
        self.port = free_port()
        base = os.path.join(workdir, name)
        self.run_dir = base + ".run"
        self.log_path = base + ".stderr"
        argv = [tools["galvanid"], "--listen", "127.0.0.1:%d" % self.port, "--store", store,
                "--max-running", str(max_running), "--max-jobs", "0", "--max-connections", "8000",
                "--log-dir", base + ".logs", "--run-dir", self.run_dir, "--pid-file", base + ".pid",
                "--log-level", "warn"]
        if store.startswith("postgres"):
            argv += ["--node-id", name] + (["--lease", str(lease)] if lease else [])
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                                     cwd=workdir)
        t_end = time.time() + DEADLINE
        while time.time() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError("galvanid %s exited (%s):\n%s" % (name, self.proc.returncode, self.tail()))
            try:
                if http_req(self.port, "GET", "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("galvanid %s did not answer /healthz" % name)

    def tail(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def end_leftovers(run_root):
    """Jobs outlive galvanid under their galvani-shim: kill whatever a run dir still names."""
    if not os.path.isdir(run_root):
        return
    for d in os.listdir(run_root):
        try:
            with open(os.path.join(run_root, d, "pid")) as f:
                pid = int(f.read().split()[0])
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


class Bench:
    def __init__(self, args):
        self.a = args
        b = args.build
        self.tools = {"galvanid": os.path.join(b, "src/daemon/galvanid"), "jobload": os.path.join(b, "bench/jobload"),
                      "wsload": os.path.join(b, "bench/wsload"), "ticker": os.path.join(b, "bench/bench_ticker")}
        self.tmp = tempfile.mkdtemp(prefix="galvani-cbench-")
        os.chmod(self.tmp, 0o755)
        self.pg = None
        self.nodes = []
        self.rows = []  # JSON results
        self.ndb = 0
        self.problems = []

    # ---- the cluster ------------------------------------------------------------------------------
    def start_pg(self):
        self.pg = PgServer(prefix="galvani-cbench-pg-").start()

    def cluster(self, store, k):
        """k nodes on a fresh database ("pg") or one node on a fresh SQLite file ("sqlite")."""
        self.ndb += 1
        wd = os.path.join(self.tmp, "r%d" % self.ndb)
        os.makedirs(wd)
        if store == "pg":
            url = self.pg.create_database("b%d" % self.ndb)
            self.db = ("pg", "b%d" % self.ndb)
        else:
            url = "sqlite:" + os.path.join(wd, "galvani.db")
            self.db = ("sqlite", os.path.join(wd, "galvani.db"))
        names = ["a", "b", "c"][:k]
        self.nodes = []
        for n in names:  # one after the other: the first creates the tables
            self.nodes.append(Node(self.tools, wd, n, url, self.a.max_running, self.a.lease))
        return self.nodes

    def stop_cluster(self):
        for n in self.nodes:
            rc = n.stop()
            if rc not in (0, None):
                self.problems.append("node %s exited %s: %s" % (n.name, rc, n.tail()[-500:]))
        for n in self.nodes:
            end_leftovers(n.run_dir)
        self.nodes = []

    def sql(self, q):
        if self.db[0] == "pg":
            out = self.pg.psql(q, db=self.db[1])
            return [line.split("|") for line in out.strip().splitlines()]
        con = sqlite3.connect(self.db[1])
        try:
            return [[("" if v is None else str(v)) for v in row] for row in con.execute(q).fetchall()]
        finally:
            con.close()

    def finished_count(self):
        if self.db[0] == "pg":
            # unset times are 0 in the PostgreSQL rows
            return int(self.sql("SELECT count(*) FROM jobs WHERE finished_at > 0")[0][0])
        st, h = http_req(self.nodes[0].port, "GET", "/healthz")
        jobs = h.get("jobs", h) if isinstance(h, dict) else {}
        return sum(int(jobs.get(k, 0) or 0) for k in ("succeeded", "failed", "cancelled"))

    # ---- 1. jobs/s ---------------------------------------------------------------------------------
    def jobs(self, store, k, kind, n):
        label = "jobs:%s:%d:%s" % (store, k, kind)
        body = {"true": {"command": ["/bin/true"]}, "sleep1": {"command": ["sleep", "1"]}}[kind]
        nodes = self.cluster(store, k)
        la0 = loadavg()
        per = [n // k + (1 if i < n % k else 0) for i in range(k)]
        procs = []
        for node, m in zip(nodes, per):
            procs.append(subprocess.Popen(
                [self.tools["jobload"], "--url", "http://127.0.0.1:%d/jobs" % node.port, "-n", str(m),
                 "-c", str(max(2, 16 // k)), "-b", json.dumps(body), "-w", "0", "-p", str(node.proc.pid),
                 "--label", label], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        loads = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
        t_end = time.time() + self.a.wait
        done = 0
        while time.time() < t_end:
            done = self.finished_count()
            if done >= n:
                break
            time.sleep(0.2)
        la1 = loadavg()
        for node in nodes:
            if node.proc.poll() is not None:
                self.problems.append("%s: node %s died (%s): %s" % (label, node.name, node.proc.returncode,
                                                                     node.tail()[-800:]))
        self.stop_cluster()
        r = self.sql("SELECT count(*), min(created_at), max(created_at), max(NULLIF(started_at, 0)), "
                     "max(NULLIF(finished_at, 0)), avg(NULLIF(started_at, 0) - created_at), "
                     "count(NULLIF(started_at, 0)), "
                     "sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) FROM jobs")[0]
        cnt, c0, c1, s1, f1, add_start, nstarted, ok = (float(x) if x else None for x in r)
        by_node = {}
        if store == "pg":
            by_node = {row[0] or "-": int(row[1]) for row in self.sql(
                "SELECT node, count(*) FROM jobs GROUP BY node ORDER BY node")}
        res = {"scenario": "jobs", "label": label, "store": store, "nodes": k, "kind": kind, "jobs": n,
               "rows": cnt, "succeeded": ok, "finished": done,
               "created_per_s": n / (c1 - c0) if c1 and c1 > c0 else None,
               "claimed_per_s": nstarted / (s1 - c0) if s1 and s1 > c0 else None,
               "completed_per_s": n / (f1 - c0) if f1 and f1 > c0 and done >= n else None,
               "add_start_ms_avg": add_start * 1000 if add_start is not None else None,
               "create_ms_p99": max((l["create_ms"]["p99"] or 0) for l in loads),
               "http_errors": sum(l["errors"] for l in loads), "by_node": by_node, "load_before": la0,
               "load_after": la1}
        if ok != n:
            self.problems.append("%s: %s of %d jobs succeeded" % (label, ok, n))
        return self.emit(res)

    # ---- 2. cross-node pause ------------------------------------------------------------------------
    def pause(self, rounds):
        a, b, c = self.cluster("pg", 3)
        st, job = http_req(c.port, "POST", "/jobs", {"command": ["sleep", "3600"], "name": "pause-target"})
        assert st == 201, (st, job)
        jid = job["id"]
        t_end = time.time() + DEADLINE
        while time.time() < t_end:  # running and its pid known, on A too
            st, j = http_req(a.port, "GET", "/jobs/%d" % jid)
            if st == 200 and j["status"] == "running" and j.get("pid") and j.get("node") == "c":
                break
            time.sleep(0.05)
        la0 = loadavg()
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=DEADLINE)
        lat = {"pause": [], "resume": []}
        bad = 0
        for _ in range(rounds):
            for verb, want in (("pause", "paused"), ("resume", "running")):
                t0 = time.perf_counter()
                st, j = http_req(a.port, "POST", "/jobs/%d/%s" % (jid, verb), conn=conn)
                lat[verb].append((time.perf_counter() - t0) * 1000)
                if st != 200 or j.get("status") != want or j.get("node") != "c":
                    bad += 1
        conn.close()
        la1 = loadavg()
        slow = [(verb, i, round(v, 1)) for verb in lat for i, v in enumerate(lat[verb]) if v > 100]
        http_req(a.port, "POST", "/jobs/%d/cancel" % jid)
        time.sleep(0.3)
        self.stop_cluster()
        both = lat["pause"] + lat["resume"]
        res = {"scenario": "pause", "rounds": rounds, "bad_answers": bad,
               "pause_ms": {"p50": pct(lat["pause"], .5), "p99": pct(lat["pause"], .99), "max": max(lat["pause"])},
               "resume_ms": {"p50": pct(lat["resume"], .5), "p99": pct(lat["resume"], .99),
                             "max": max(lat["resume"])},
               "all_ms": {"n": len(both), "p50": pct(both, .5), "p99": pct(both, .99)},
               "slow": slow, "load_before": la0, "load_after": la1}
        if bad:
            self.problems.append("pause: %d answers were not 200 with the expected state on node c" % bad)
        return self.emit(res)

    # ---- 2b. relayed requests: what only a job's node has, asked of another node ----------------------
    def relay(self, rounds):
        a, b, c = self.cluster("pg", 3)
        st, job = http_req(c.port, "POST", "/jobs", {"command": ["sh", "-c", "seq 1 200; exec sleep 3600"],
                                                     "name": "relay-target"})
        assert st == 201, (st, job)
        jid = job["id"]
        t_end = time.time() + DEADLINE
        while time.time() < t_end:  # running on C, its row on A, its whole output in the log
            st, j = http_req(a.port, "GET", "/jobs/%d" % jid)
            st2, text = http_req(c.port, "GET", "/jobs/%d/log" % jid)
            if (st == 200 and j["status"] == "running" and j.get("node") == "c" and st2 == 200
                    and isinstance(text, bytes) and text.endswith(b"\n200\n")):
                break
            time.sleep(0.05)
        la0 = loadavg()
        lat, bad = {}, 0
        want_log = None
        for name, node in (("direct", c), ("relayed", a)):
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=DEADLINE)
            for what in ("log", "params"):
                xs = lat.setdefault("%s_%s" % (what, name), [])
                for i in range(rounds):
                    t0 = time.perf_counter()
                    if what == "log":
                        conn.request("GET", "/jobs/%d/log" % jid)
                        resp = conn.getresponse()
                        body = resp.read()
                        ok = resp.status == 200 and (want_log is None or body == want_log)
                        want_log = want_log or body
                    else:
                        st, j = http_req(node.port, "PATCH", "/jobs/%d/params" % jid, {"round": i}, conn=conn)
                        ok = st == 200 and j.get("params") == {"round": i} and j.get("node") == "c"
                    xs.append((time.perf_counter() - t0) * 1000)
                    bad += not ok
            conn.close()
        la1 = loadavg()
        http_req(a.port, "POST", "/jobs/%d/cancel" % jid)
        time.sleep(0.3)
        self.stop_cluster()
        res = {"scenario": "relay", "rounds": rounds, "bad_answers": bad, "load_before": la0, "load_after": la1,
               "log_bytes": len(want_log or b"")}
        for k, xs in lat.items():
            res[k + "_ms"] = {"p50": pct(xs, .5), "p99": pct(xs, .99), "max": max(xs)}
        if bad:
            self.problems.append("relay: %d answers were not the owner's (200 with its log / params)" % bad)
        return self.emit(res)

    # ---- 1b. add -> start, one job at a time ---------------------------------------------------------
    def addstart(self, count):
        """The anchor's other figure, at a low rate: (local) POST /jobs to node B, which has free slots: the 201
        comes once the job's supervisor has spawned it (its pid is in the answer); (claimed) POST /jobs to node A,
        whose 64 slots are full: the job is queued for the cluster and another node claims and starts it:
        started_at - created_at from its row (two nodes' clocks: one machine)."""
        a, b, c = self.cluster("pg", 3)
        filler = []
        for _ in range(self.a.max_running):
            st, j = http_req(a.port, "POST", "/jobs", {"command": ["sleep", "3600"]})
            assert st == 201, (st, j)
            filler.append(j["id"])
        la0 = loadavg()
        local, claimed = [], []
        conn_b = http.client.HTTPConnection("127.0.0.1", b.port, timeout=DEADLINE)
        conn_a = http.client.HTTPConnection("127.0.0.1", a.port, timeout=DEADLINE)
        for _ in range(count):
            t0 = time.perf_counter()
            st, j = http_req(b.port, "POST", "/jobs", {"command": ["/bin/true"]}, conn=conn_b)
            local.append((time.perf_counter() - t0) * 1000)
            if st != 201 or j.get("node") != "b" or not j.get("pid"):
                self.problems.append("addstart: a job created on B with free slots: %s %s" % (st, j))
            st, j = http_req(a.port, "POST", "/jobs", {"command": ["/bin/true"]}, conn=conn_a)
            if st != 201:
                self.problems.append("addstart: a job created on full A: %s %s" % (st, j))
            else:
                claimed.append(j["id"])
            time.sleep(0.02)
        conn_a.close()
        conn_b.close()
        t_end = time.time() + DEADLINE
        ids = ",".join(str(i) for i in claimed)
        rows = []
        while time.time() < t_end:
            rows = self.sql("SELECT node, (started_at - created_at) * 1000 FROM jobs WHERE id IN (%s) AND "
                            "finished_at > 0" % ids)
            if len(rows) >= len(claimed):
                break
            time.sleep(0.2)
        la1 = loadavg()
        for jid in filler:
            http_req(a.port, "POST", "/jobs/%d/cancel" % jid)
        time.sleep(0.3)
        self.stop_cluster()
        waits = [float(r[1]) for r in rows]
        nodes = sorted(set(r[0] for r in rows))
        if len(rows) < len(claimed) or "a" in nodes:
            self.problems.append("addstart: %d of %d queued jobs ran, on nodes %s" % (len(rows), len(claimed), nodes))
        res = {"scenario": "addstart", "count": count,
               "local_post_ms": {"p50": pct(local, .5), "p99": pct(local, .99), "avg": sum(local) / len(local)},
               "claimed_ms": {"p50": pct(waits, .5), "p99": pct(waits, .99),
                              "avg": sum(waits) / len(waits) if waits else None},
               "claimed_by": nodes, "load_before": la0, "load_after": la1}
        return self.emit(res)

    # ---- 3. WebSocket fan-out -----------------------------------------------------------------------
    def wsload(self, node, clients, label):
        return subprocess.Popen(
            [self.tools["wsload"], "--url", "ws://127.0.0.1:%d/ws/jobs?v=2" % node.port, "--mode", "jobs",
             "-c", str(clients), "-r", "2000", "-d", str(self.a.window), "--ramp-timeout", "40",
             "-p", str(node.proc.pid), "--label", label],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ws(self, client_counts):
        nodes = self.cluster("pg", 3)
        tick_count = 10 * 900  # 15 min at most; cancelled at the end
        ids = []
        for i in range(self.a.ws_jobs):
            node = nodes[i % 3]
            st, j = http_req(node.port, "POST", "/jobs", {"command": [self.tools["ticker"], "100",
                                                                     str(tick_count)], "name": "tick%d" % i})
            assert st == 201, (st, j)
            ids.append((node, j["id"]))
        time.sleep(1.0)
        out = []
        for total in client_counts:
            for layout in ("spread", "one"):
                la0 = loadavg()
                label = "ws:%s:%d" % (layout, total)
                if layout == "spread":
                    per = [total // 3 + (1 if i < total % 3 else 0) for i in range(3)]
                    procs = [self.wsload(nd, m, label) for nd, m in zip(nodes, per)]
                else:
                    per = [total]
                    procs = [self.wsload(nodes[0], total, label)]
                outs = []
                for p in procs:
                    line = p.communicate(timeout=600)[0].strip().splitlines()
                    outs.append(json.loads(line[-1]) if line else None)
                la1 = loadavg()
                good = [o for o in outs if o]
                w = sum(m for m, o in zip(per, outs) if o) or 1
                upd = sum((o["updates_per_client_s"]["mean"] or 0) * m for m, o in zip(per, outs) if o) / w
                res = {"scenario": "ws", "layout": layout, "clients": total, "jobs": self.a.ws_jobs,
                       "window_s": self.a.window,
                       "connected": sum(o["connected"] for o in good),
                       "updates_per_client_s": upd,
                       "updates_min": min((o["updates_per_client_s"]["min"] or 0) for o in good) if good else None,
                       # p99 of the whole: the worst of the per-node p99s (an upper bound)
                       "latency_ms_p50": max((o["latency_ms"]["p50"] or 0) for o in good) if good else None,
                       "latency_ms_p99": max((o["latency_ms"]["p99"] or 0) for o in good) if good else None,
                       "server_cpu_pct": [o["server"]["cpu_pct"] for o in good],
                       "per_node": good, "load_before": la0, "load_after": la1}
                if res["connected"] < total:
                    self.problems.append("%s: %d of %d clients connected" % (label, res["connected"], total))
                out.append(self.emit(res))
                time.sleep(1.0)
        for node, jid in ids:
            http_req(node.port, "POST", "/jobs/%d/cancel" % jid)
        time.sleep(0.5)
        self.stop_cluster()
        return out

    # ---- 4. fork floor ----------------------------------------------------------------------------
    def floor(self, n):
        la0 = loadavg()
        p = subprocess.run([self.tools["jobload"], "--fork-floor", str(n)], capture_output=True, text=True,
                           timeout=300)
        res = json.loads(p.stdout.strip().splitlines()[-1])["fork_floor"]
        res.update({"scenario": "floor", "load_before": la0, "load_after": loadavg()})
        return self.emit(res)

    def emit(self, res):
        self.rows.append(res)
        print("  %s" % json.dumps({k: v for k, v in res.items() if k != "per_node"}), file=sys.stderr, flush=True)
        return res

    def close(self):
        try:
            self.stop_cluster()
        finally:
            if self.pg:
                self.pg.stop()
            subprocess.run(["rm", "-rf", self.tmp])


def f(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def table(b, meta):
    L = []
    L.append("galvani cluster bench (%s; %s; %s)" % (meta["date"], meta["machine"], meta["conditions"]))
    L.append("")
    L.append("1. Jobs/s (created / claimed / completed), created round-robin over the nodes, --max-running %d "
             "per node" % b.a.max_running)
    L.append("   %-22s %6s %9s %9s %9s %10s %9s  %s" % ("store, nodes, job", "jobs", "created/s", "claimed/s",
                                                          "done/s", "add>start", "POST p99", "loadavg before -> after"))
    for r in b.rows:
        if r["scenario"] != "jobs":
            continue
        name = "%s %d %s" % ("PostgreSQL" if r["store"] == "pg" else "SQLite", r["nodes"],
                             "/bin/true" if r["kind"] == "true" else "sleep 1")
        L.append("   %-22s %6d %9s %9s %9s %8s ms %6s ms  %s -> %s" % (
            name, r["jobs"], f(r["created_per_s"]), f(r["claimed_per_s"]), f(r["completed_per_s"]),
            f(r["add_start_ms_avg"], "%.1f"), f(r["create_ms_p99"], "%.1f"), r["load_before"], r["load_after"]))
    for r in b.rows:
        if r["scenario"] == "addstart":
            L.append("")
            L.append("1b. add -> start, one job at a time (%d each, 20 ms apart), 3 nodes:" % r["count"])
            L.append("   on a node with a free slot, POST -> 201 with the pid (spawned):  avg %s ms  p50 %s ms  p99 %s ms"
                     % (f(r["local_post_ms"]["avg"], "%.2f"), f(r["local_post_ms"]["p50"], "%.2f"),
                        f(r["local_post_ms"]["p99"], "%.2f")))
            L.append("   on a full node, claimed by another (created_at -> started_at):   avg %s ms  p50 %s ms  p99 %s ms"
                     % (f(r["claimed_ms"]["avg"], "%.2f"), f(r["claimed_ms"]["p50"], "%.2f"),
                        f(r["claimed_ms"]["p99"], "%.2f")))
            L.append("   loadavg %s -> %s" % (r["load_before"], r["load_after"]))
    for r in b.rows:
        if r["scenario"] == "pause":
            L.append("")
            L.append("2. Cross-node control: POST to node A for a job running on node C, answered after C applied "
                     "it (%d pauses + %d resumes, one at a time)" % (r["rounds"], r["rounds"]))
            L.append("   pause   p50 %s ms  p99 %s ms  max %s ms" % (f(r["pause_ms"]["p50"], "%.2f"),
                     f(r["pause_ms"]["p99"], "%.2f"), f(r["pause_ms"]["max"], "%.1f")))
            L.append("   resume  p50 %s ms  p99 %s ms  max %s ms" % (f(r["resume_ms"]["p50"], "%.2f"),
                     f(r["resume_ms"]["p99"], "%.2f"), f(r["resume_ms"]["max"], "%.1f")))
            slow = r.get("slow", [])
            L.append("   answers over 100 ms: %d of %d%s" % (len(slow), 2 * r["rounds"], (" (%s ms)" % ", ".join(
                "%.0f" % v for _, _, v in slow[:8])) if slow else ""))
            L.append("   loadavg %s -> %s" % (r["load_before"], r["load_after"]))
    for r in b.rows:
        if r["scenario"] == "relay":
            L.append("")
            L.append("2b. Relayed requests: a job running on node C, asked of C itself (direct) and of node A (relayed "
                     "to C by h2o's proxy); %d of each, one at a time on one keep-alive connection" % r["rounds"])
            for what, label in (("log", "GET /jobs/ID/log (%d bytes)" % r["log_bytes"]),
                                ("params", "PATCH /jobs/ID/params")):
                d, x = r[what + "_direct_ms"], r[what + "_relayed_ms"]
                L.append("   %-30s direct p50 %s ms p99 %s ms   relayed p50 %s ms p99 %s ms" % (
                    label, f(d["p50"], "%.2f"), f(d["p99"], "%.2f"), f(x["p50"], "%.2f"), f(x["p99"], "%.2f")))
            L.append("   loadavg %s -> %s" % (r["load_before"], r["load_after"]))
    ws = [r for r in b.rows if r["scenario"] == "ws"]
    if ws:
        L.append("")
        L.append("3. WebSocket fan-out: /ws/jobs?v=2, %d jobs x 10 changes/s on the 3 nodes (window %d s)"
                 % (ws[0]["jobs"], b.a.window))
        L.append("   %-26s %9s %12s %10s %10s  %s" % ("clients", "connected", "updates/s/c", "lat p50", "lat p99",
                                                    "loadavg before -> after"))
        for r in ws:
            name = "%d %s" % (r["clients"], "spread over 3 nodes" if r["layout"] == "spread" else "all on node A")
            L.append("   %-26s %9d %12s %7s ms %7s ms  %s -> %s" % (
                name, r["connected"], f(r["updates_per_client_s"], "%.1f"), f(r["latency_ms_p50"], "%.1f"),
                f(r["latency_ms_p99"], "%.1f"), r["load_before"], r["load_after"]))
    for r in b.rows:
        if r["scenario"] == "floor":
            L.append("")
            L.append("4. fork+exec+wait of /bin/true alone, one at a time: %.0f/s (%.0f us each)  loadavg %s -> %s"
                     % (r["per_s"], r["us_each"], r["load_before"], r["load_after"]))
    L.append("")
    L.append("Anchors (issue 18), not measured here: graphile-worker publishes ~183,000 jobs/s executed and 4.16 ms")
    L.append("average add->start latency, for in-process tasks (a JS function call per job, no process) on a large")
    L.append("PostgreSQL server (many cores, its own machine).  galvani runs an OS process per job: row 4 is the")
    L.append("floor under that on this machine, before any database or supervisor.")
    if b.problems:
        L.append("")
        L.append("Problems seen in this run:")
        L.extend("  - " + p for p in b.problems)
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="the test suite's run: a few jobs and clients, every path")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="jobs,addstart,pause,relay,ws,floor")
    ap.add_argument("--max-running", type=int, default=64)
    ap.add_argument("--lease", type=int, default=0, help="galvanid --lease (default: galvanid's, 15 s)")
    ap.add_argument("--report", metavar="JSON", help="only print the table again from a run's .json")
    a = ap.parse_args()
    if a.report:  # the table of an earlier run (its date: the file's name)
        b = Bench.__new__(Bench)
        b.a, b.problems = a, []
        with open(a.report) as fj:
            b.rows = [json.loads(line) for line in fj if line.strip()]
        ws = [r for r in b.rows if r["scenario"] == "ws"]
        a.window = ws[0].get("window_s", 10) if ws else 10
        print(table(b, {"date": os.path.basename(a.report), "machine": "%d cores" % os.cpu_count(),
                        "conditions": "nothing pinned"}), end="")
        return 0
    if a.smoke:
        a.n_true, a.n_sleep, a.rounds, a.clients, a.window, a.ws_jobs, a.floor_n = 40, 10, 5, [30], 1, 6, 50
        a.wait, a.addstart_n = 60, 5
    elif a.quick:
        a.n_true, a.n_sleep, a.rounds, a.clients, a.window, a.ws_jobs, a.floor_n = 300, 200, 40, [150], 3, 20, 300
        a.wait, a.addstart_n = 60, 50
    else:
        a.n_true, a.n_sleep, a.rounds, a.clients, a.window, a.ws_jobs, a.floor_n = 3000, 1500, 200, [300, 3000], 10, 20, 1000
        a.wait, a.addstart_n = 180, 200
    only = set(a.only.split(","))
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "%d cores, %s" % (os.cpu_count(), os.uname().machine),
            "conditions": "3 nodes, PostgreSQL and the load generators on the same cores, nothing pinned"}
    b = Bench(a)
    try:
        b.start_pg()
        if "jobs" in only:
            for kind, n in (("true", a.n_true), ("sleep1", a.n_sleep)):
                b.jobs("sqlite", 1, kind, n)
                for k in (1, 2, 3):
                    b.jobs("pg", k, kind, n)
        if "addstart" in only:
            b.addstart(a.addstart_n)
        if "pause" in only:
            b.pause(a.rounds)
        if "relay" in only:
            b.relay(a.rounds)
        if "ws" in only:
            b.ws(a.clients)
        if "floor" in only:
            b.floor(a.floor_n)
    finally:
        b.close()
    text = table(b, meta)
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, "cluster-%s%s" % (stamp, "-smoke" if a.smoke else "-quick" if a.quick else ""))
    with open(base + ".json", "w") as fj:
        for r in b.rows:
            fj.write(json.dumps(r) + "\n")
    with open(base + ".txt", "w") as ft:
        ft.write(text)
    print(text)
    print("(written: %s.json, %s.txt)" % (base, base), file=sys.stderr)
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
