#!/usr/bin/python3
"""RSS cost of finished jobs with large specs (issue 15, "Hardening").

Starts galvanid (GALVANID=path, default build/src/daemon/galvanid) on a temp
database, posts JOBS jobs whose command has ARGS arguments of ARG_LEN bytes
each (`true a a a ...`: they finish at once), waits until every one finished,
and prints the daemon's RSS before, after, per finished job, and after one
GET /jobs?limit=1000.  A measurement, not a test: the numbers depend on the
allocator and the machine; tests assert the limits, not these.

  bench/spec_rss.py [ARGS [ARG_LEN [JOBS]]]   (default 100000 3 5)
"""
import http.client
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "daemon", "e2e"))
os.environ.setdefault("GALVANID", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "src",
                                               "daemon", "galvanid"))
from test_e2e import Daemon, wait_for  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    nargs = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    arg_len = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    njobs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with tempfile.TemporaryDirectory(prefix="galvani-rss-") as tmp:
        d = Daemon(tmp, "--log-level", "info")
        try:
            pid = d.proc.pid
            body = json.dumps({"command": ["true"] + ["a" * arg_len] * (nargs - 1)}).encode()
            time.sleep(0.5)
            rss0 = rss_kb(pid)
            ids = []
            for _ in range(njobs):
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
                c.request("POST", "/jobs", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                answer = r.read()
                c.close()
                if r.status != 201:
                    print("POST /jobs: %d %s" % (r.status, answer[:300].decode(errors="replace")))
                    return 1
                ids.append(json.loads(answer)["id"])

            def all_finished():
                return all(d.job(i)["status"] == "succeeded" for i in ids)
            wait_for(all_finished, timeout=120, what="every job finished")
            time.sleep(0.5)
            rss1 = rss_kb(pid)
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
            c.request("GET", "/jobs?limit=1000")
            r = c.getresponse()
            n = len(r.read())
            c.close()
            time.sleep(0.5)
            rss2 = rss_kb(pid)
            print("spec: %d arguments of %d bytes, body %d bytes; %d jobs" % (nargs, arg_len, len(body), njobs))
            print("RSS: start %.1f MB, after %d finished jobs %.1f MB (%.2f MB per job), "
                  "after GET /jobs?limit=1000 (%d bytes) %.1f MB (+%.1f MB)" %
                  (rss0 / 1024, njobs, rss1 / 1024, (rss1 - rss0) / 1024 / njobs, n, rss2 / 1024,
                   (rss2 - rss1) / 1024))
        finally:
            d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
