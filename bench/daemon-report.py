#!/usr/bin/python3
"""Helpers of bench/run-daemon.sh: results JSON in, table and chart data out.

  daemon-report.py --wrk LABEL WRK_OUTPUT       wrk's text output -> one JSON line
  daemon-report.py --assemble JSONL --quick Q --date D
                                                the runs' JSON lines -> the results JSON
  daemon-report.py --table RESULTS.json         the table, with ratios
  daemon-report.py --plot-data RESULTS.json DIR gnuplot data files (bench/plot-daemon.sh)

Labels are "scenario:server:clients" (wsload/jobload --label)."""
import json
import os
import platform
import re
import subprocess
import sys

SERVERS = ("galvanid", "peer", "ceiling")


def wrk_json(label, path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)

    def ms(pct):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\b" % pct, text, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return round(v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v, 3)

    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"tool": "wrk", "label": label, "req_per_s": float(rps.group(1)) if rps else None,
            "latency_ms": {"p50": ms(50), "p99": ms(99)},
            "errors": (int(errs.group(1)) if errs else 0) + (sum(map(int, sock.groups())) if sock else 0)}


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""
    model = re.search(r"Model name:\s+(.*)", sh(["lscpu"]))
    return {"cpu": model.group(1) if model else platform.processor(), "nproc": os.cpu_count(),
            "kernel": platform.release(), "load_avg": os.getloadavg()}


def assemble(jsonl, quick, date):
    runs = []
    for line in open(jsonl):
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a tool that died mid-line: its run is missing from the table
        parts = r.get("label", "").split(":")
        if len(parts) == 3:
            r["scenario"], r["srv"], r["n"] = parts[0], parts[1], int(parts[2])
        elif "fork_floor" in r:
            r["scenario"] = "fork_floor"
        runs.append(r)
    return {"date": date, "quick": bool(int(quick)), "machine": machine(), "runs": runs}


def fmt(v, d=1):
    return "-" if v is None else ("%.*f" % (d, v))


def ratio(a, b):
    return "-" if a is None or b in (None, 0) else "%.2fx" % (a / b)


def per_cpu(r):
    """Updates delivered per second per client, per unit of the server's CPU."""
    if not r or not r["server"].get("cpu_pct"):
        return None
    return r["updates_per_client_s"]["mean"] / r["server"]["cpu_pct"]


def table(res):
    runs = res["runs"]
    out = []
    w = out.append
    w("galvanid under load -- %s%s; server on CPU 0, load generator on CPU 1" %
      (res["date"], " (quick)" if res["quick"] else ""))
    w("machine: %s, %s CPUs, load average at the end %s" %
      (res["machine"]["cpu"], res["machine"]["nproc"], ", ".join("%.2f" % x for x in res["machine"]["load_avg"])))

    def find(scn, srv, n=None):
        for r in runs:
            if r.get("scenario") == scn and r.get("srv") == srv and (n is None or r.get("n") == n):
                return r
        return None

    for scn, title in (("seed", "1. seed scenario: clients on /ws following one job (10 changes/s)"),
                       ("jobs", "2. 100 jobs x 10 changes/s on /ws/jobs (galvanid: ?v=2; ceiling: one frame of 100 jobs per tick)")):
        ns = sorted({r["n"] for r in runs if r.get("scenario") == scn})
        if not ns:
            continue
        w("")
        w(title)
        w("%-9s %6s %7s %9s %9s %8s %8s %8s %8s %8s %7s %7s %6s %6s" % (
            "server", "clients", "conn", "upd/s", "min", "p50 ms", "p99 ms", "p99.9", "rd p99", "hs p99", "CPU %",
            "RSS MB", "errs", "gen %"))
        for n in ns:
            for srv in SERVERS:
                r = find(scn, srv, n)
                if not r:
                    continue
                u, lat, s = r["updates_per_client_s"], r["latency_ms"], r["server"]
                rd = (r.get("read_latency_ms") or {}).get("p99")
                w("%-9s %6d %7d %9s %9s %8s %8s %8s %8s %8s %7s %7s %6d %6s" % (
                    srv, n, r["connected"], fmt(u["mean"], 2), fmt(u["min"], 2), fmt(lat["p50"]), fmt(lat["p99"]),
                    fmt(lat["p999"]), fmt(rd), fmt(r["handshake_ms"]["p99"]), fmt(s["cpu_pct"]),
                    fmt(s["rss_max_kb"] / 1024 if s.get("rss_max_kb") else None), r["errors"]["total"],
                    fmt(r["loadgen_cpu_pct"], 0) + ("*" if (r["loadgen_cpu_pct"] or 0) >= 90 else "")))
            g, c, p = find(scn, "galvanid", n), find(scn, "ceiling", n), find(scn, "peer", n)
            if g:
                gu = g["updates_per_client_s"]["mean"]
                w("  %d clients: galvanid/ceiling updates %s (per server CPU-second %s), galvanid/peer updates %s%s%s" % (
                    n, ratio(gu, c and c["updates_per_client_s"]["mean"]), ratio(per_cpu(g), per_cpu(c)),
                    ratio(gu, p and p["updates_per_client_s"]["mean"]),
                    ("; demo pace %.2f steps/s" % g["demo_steps_s"]) if g.get("demo_steps_s") is not None else "",
                    ("; galvanid wrote to each client %.1f times/s (%.1f flushes/s)%s" % (
                        g["server"]["writes_per_client_s"], g["server"]["flushes_per_s"],
                        ", frames waited in it p99 <= %s ms" % fmt((g["server"].get("write_delay_ms") or {}).get("p99"))
                        if (g["server"].get("write_delay_ms") or {}).get("p99") is not None else ""))
                    if g["server"].get("writes_per_client_s") is not None else ""))

    if any((r.get("loadgen_cpu_pct") or 0) >= 90 for r in runs if r.get("scenario") in ("seed", "jobs")):
        w("  * the load generator's core was saturated: that row measures the client as much as the server")
    storm = [r for r in runs if r.get("scenario") in ("storm-new", "storm-existing")]
    if storm:
        w("")
        w("3. connect storm while 100 jobs tick")
        w("%-9s %-9s %6s %7s %11s %9s %9s %8s %6s" % (
            "server", "clients", "n", "conn", "served in s", "hs p50", "hs p99", "p99 ms", "errs"))
        for r in storm:
            w("%-9s %-9s %6d %7d %11s %9s %9s %8s %6d" % (
                r["srv"], "new" if r["scenario"] == "storm-new" else "existing", r["n"], r["connected"],
                fmt(r["served_all_s"], 2), fmt(r["handshake_ms"]["p50"]), fmt(r["handshake_ms"]["p99"]),
                fmt(r["latency_ms"]["p99"]), r["errors"]["total"]))
        for r in runs:
            if r.get("scenario") == "storm-kernel":
                w("  %s's storm, kernel (system-wide): %s" % (
                    r["srv"], ", ".join("%s %d" % (k[6:], v) for k, v in sorted(r["delta"].items()))))

    idle = [r for r in runs if r.get("scenario") == "idle"]
    if idle:
        w("")
        w("4. idle WebSocket connections: server RSS")
        w("%-9s %7s %9s %14s" % ("server", "clients", "RSS MB", "KiB/connection"))
        for srv in SERVERS:
            base = find("idle", srv, 0)
            for r in sorted((r for r in idle if r["srv"] == srv), key=lambda r: r["n"]):
                rss = r["server"].get("rss_end_kb")
                per = None
                if r["n"] and base and rss:
                    per = (rss - base["server"]["rss_end_kb"]) / r["n"]
                w("%-9s %7d %9s %14s" % (srv, r["n"], fmt(rss / 1024 if rss else None), fmt(per, 2)))

    http = [r for r in runs if r.get("scenario") == "http"]
    if http:
        w("")
        w("5. HTTP GET /jobs/{id} (wrk, 1 thread, 64 connections)")
        w("%-9s %10s %8s %8s %6s" % ("server", "req/s", "p50 ms", "p99 ms", "errs"))
        for srv in SERVERS:
            r = find("http", srv)
            if r:
                w("%-9s %10s %8s %8s %6s" % (srv, fmt(r["req_per_s"], 0), fmt(r["latency_ms"]["p50"], 2),
                                              fmt(r["latency_ms"]["p99"], 2), r["errors"]))
        g, c, p = find("http", "galvanid"), find("http", "ceiling"), find("http", "peer")
        if g:
            w("  galvanid/ceiling %s, galvanid/peer %s" % (
                ratio(g["req_per_s"], c and c["req_per_s"]), ratio(g["req_per_s"], p and p["req_per_s"])))

    cr, cx = find("create", "galvanid"), find("create", "galvanid-exec")
    ff = next((r for r in runs if r.get("scenario") == "fork_floor"), None)
    if cr or ff:
        w("")
        w("6./7. job creation (POST /jobs of /bin/true, --max-running 64, 16 connections)")
        for r, how in ((cr, "supervisors from the fork server"), (cx, "supervisors exec'd (GALVANI_SHIM)")):
            if r:
                w("  %s: %d created of %d (%d errors): %s/s accepted, create p50 %s ms, p99 %s ms; all finished "
                  "after %s s (%s/s); %s committed transitions/s; galvanid CPU %s %%" % (
                      how, r["created"], r["jobs"], r["errors"], fmt(r["create_rate"], 0),
                      fmt(r["create_ms"]["p50"], 2), fmt(r["create_ms"]["p99"], 2), fmt(r["complete_s"], 2),
                      fmt(r["complete_rate"], 0), fmt(r["transitions_per_s"], 0), fmt(r["server_cpu_pct"])))
        if cr and cx:
            w("  fork server / exec: completed jobs/s %s" % ratio(cr["complete_rate"], cx["complete_rate"]))
        if ff:
            w("  floor: posix_spawn + waitpid of /bin/true, one at a time: %.0f/s (%.0f us each)" % (
                ff["fork_floor"]["per_s"], ff["fork_floor"]["us_each"]))
    return "\n".join(out) + "\n"


def plot_data(res, d):
    """One file per (scenario, server): clients, updates/s, p99 ms, RSS MB."""
    os.makedirs(d, exist_ok=True)
    for scn in ("seed", "jobs", "idle"):
        for srv in SERVERS:
            rows = sorted((r for r in res["runs"] if r.get("scenario") == scn and r.get("srv") == srv),
                          key=lambda r: r["n"])
            with open(os.path.join(d, "%s-%s.dat" % (scn, srv)), "w") as f:
                f.write("# clients updates_per_client_s p99_ms rss_mb\n")
                for r in rows:
                    u = (r.get("updates_per_client_s") or {}).get("mean")
                    p = (r.get("latency_ms") or {}).get("p99")
                    rss = r["server"].get("rss_max_kb") or r["server"].get("rss_end_kb")
                    f.write("%d %s %s %s\n" % (r["n"], "NaN" if u is None else u, "NaN" if p is None else p,
                                               "NaN" if not rss else rss / 1024))


def main(a):
    if a[:1] == ["--wrk"] and len(a) == 3:
        print(json.dumps(wrk_json(a[1], a[2])))
    elif a[:1] == ["--assemble"] and len(a) == 6:
        print(json.dumps(assemble(a[1], a[3], a[5]), indent=1))
    elif a[:1] == ["--table"] and len(a) == 2:
        sys.stdout.write(table(json.load(open(a[1]))))
    elif a[:1] == ["--plot-data"] and len(a) == 3:
        plot_data(json.load(open(a[1])), a[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
