#!/usr/bin/python3
"""GET /metrics (Prometheus) against the real galvanid (docs/observability.md).

Every scrape is parsed with Debian's python3-prometheus-client
(prometheus_client.parser), the parser a Prometheus-compatible stack would
use, so a format error fails here.  Then:

- every documented family exists, with its type;
- counts follow what the test did: jobs by status equal GET /jobs's totals,
  one transition per status change, spawns and exits by outcome, rule
  firings by action, stream clients while a WebSocket and an SSE stream are
  open (and none once they closed), frames sent, histograms consistent
  (cumulative buckets, +Inf = _count = spawns);
- requests are counted by route pattern, never by raw path: every path of
  web/openapi.json is counted under its own name, ids never reach a label;
- a disk-full store fault is counted with its cause, and the availability
  gauge follows it back up;
- with a token, /metrics needs it (401 without); the read-only token is
  enough.

Deterministic: every wait is on a condition, no timing is asserted.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

import websockets
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import DEADLINE, GALVANID, DaemonTest, wait_for  # noqa: E402
from test_faults import FaultTest, SseWatcher  # noqa: E402
import storedb  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin"}
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
STATUSES = ("queued", "running", "paused", "succeeded", "failed", "cancelled")
FULL = "metrics-full-5c2e9a71"
READ = "metrics-read-0d4b8f36"

# The documented families (docs/observability.md) and their types.  The
# parser names a counter family without its _total suffix.
FAMILIES = {
    "galvanid_build_info": "gauge",
    "process_cpu_seconds": "counter",
    "process_start_time_seconds": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "galvanid_jobs": "gauge",
    "galvanid_jobs_max_running": "gauge",
    "galvanid_job_transitions": "counter",
    "galvanid_process_spawns": "counter",
    "galvanid_process_spawn_duration_seconds": "histogram",
    "galvanid_process_exits": "counter",
    "galvanid_rule_firings": "counter",
    "galvanid_stream_clients": "gauge",
    "galvanid_stream_frames_sent": "counter",
    "galvanid_stream_frames_dropped": "counter",
    "galvanid_stream_clients_dropped": "counter",
    "galvanid_store_commit_duration_seconds": "histogram",
    "galvanid_store_faults": "counter",
    "galvanid_store_write_errors": "counter",
    "galvanid_store_available": "gauge",
    "galvanid_store_pending_writes": "gauge",
    "galvanid_http_requests": "counter",
    "galvanid_http_connections": "gauge",
    "galvanid_http_connections_max": "gauge",
    "galvanid_http_connections_refused": "counter",
}


class Scrape:
    """One parsed scrape: families by name, and sample lookup by labels."""

    def __init__(self, text):
        self.text = text
        self.families = {}
        for fam in text_string_to_metric_families(text):
            if fam.name in self.families:
                raise AssertionError("family %s appears twice" % fam.name)
            self.families[fam.name] = fam
        seen = set()
        for fam in self.families.values():
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen:
                    raise AssertionError("duplicate series %s %s" % key)
                seen.add(key)

    def samples(self, name):
        return [s for fam in self.families.values() for s in fam.samples if s.name == name]

    def value(self, name, **labels):
        """The value of series name{labels}; 0 if it is absent (a counter
        whose series appear once they happen)."""
        found = [s.value for s in self.samples(name) if s.labels == labels]
        if len(found) > 1:
            raise AssertionError("%s%s: %d series" % (name, labels, len(found)))
        return found[0] if found else 0

    def label_values(self, name, label):
        return {s.labels[label] for s in self.samples(name)}


def scrape(d, headers=None):
    status, hdrs, body = d.request("GET", "/metrics", headers=headers)
    assert status == 200, (status, body)
    ctype = {k.lower(): v for k, v in hdrs.items()}["content-type"]
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    return Scrape(body)


def job_totals(d):
    totals = {}
    for st in STATUSES:
        status, _, body = d.request("GET", "/jobs?status=%s&limit=0" % st)
        assert status == 200, (status, body)
        totals[st] = body["total"]
    return totals


def check_histogram(test, m, name):
    """Cumulative buckets ending with +Inf = _count; returns _count."""
    buckets = [(float(s.labels["le"]), s.value) for s in m.samples(name + "_bucket")]
    test.assertGreater(len(buckets), 1, name)
    test.assertEqual(buckets, sorted(buckets), name + ": bounds ascending, counts cumulative")
    test.assertEqual(buckets[-1][0], float("inf"))
    count = m.value(name + "_count")
    test.assertEqual(buckets[-1][1], count, name)
    test.assertGreaterEqual(m.value(name + "_sum"), 0)
    return count


class MetricsTest(DaemonTest):
    def test_families_and_counts_follow_the_jobs(self):
        d = self.d
        m0 = scrape(d)
        for name, kind in FAMILIES.items():
            self.assertIn(name, m0.families, "family %s is missing" % name)
            self.assertEqual(m0.families[name].type, kind, name)
        version = subprocess.run([GALVANID, "--version"], capture_output=True, text=True, timeout=DEADLINE).stdout
        info = m0.samples("galvanid_build_info")
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0].value, 1)
        self.assertEqual("galvanid " + info[0].labels["version"], version.strip())
        self.assertTrue(info[0].labels["libuv"] and info[0].labels["sqlite"])
        self.assertTrue(0 < m0.value("process_start_time_seconds") <= time.time() + 1)
        self.assertGreater(m0.value("process_resident_memory_bytes"), 0)
        self.assertEqual(m0.value("galvanid_jobs_max_running"), 4)
        self.assertEqual(m0.value("galvanid_store_available"), 1)
        for st in STATUSES:
            self.assertEqual(m0.value("galvanid_jobs", status=st), 0, st)

        # Seven jobs: three succeed, one exits 3, one cannot start, one is
        # paused by its rule (which also notifies), one keeps running.
        ok = [d.create(command=["true"]) for _ in range(3)]
        bad = d.create(command=["sh", "-c", "exit 3"], env=ENV)
        missing = d.create(command=["/nonexistent/galvani-test-program"])
        ruled = d.create(command=["sh", "-c", 'echo "::metric score 1"; exec sleep 3600'], env=ENV,
                         rules=[{"when": "metrics.score > 0.5", "then": "pause"},
                                {"when": "metrics.score > 0.5", "then": "notify"}])
        sleeper = d.create(command=["sleep", "3600"])
        for job in ok:
            d.wait_status(job["id"], "succeeded")
        d.wait_status(bad["id"], "failed")
        d.wait_status(missing["id"], "failed")
        d.wait_status(ruled["id"], "paused")
        d.wait_status(sleeper["id"], "running")
        # Both firings are counted as they are recorded; the exits of the
        # finished jobs once their supervisors reported them (which is
        # before the status changed, but the scrape waits on the counts).
        m1 = wait_for(lambda: (lambda m: m if m.value("galvanid_rule_firings_total", action="notify") == 1 and
                               m.value("galvanid_process_exits_total", outcome="failure") == 1 else None)(scrape(d)),
                      what="the firings and the exits in /metrics")

        # Jobs by status: what GET /jobs says (nothing moves now).
        totals = job_totals(d)
        self.assertEqual(totals, {"queued": 0, "running": 1, "paused": 1, "succeeded": 3, "failed": 2, "cancelled": 0})
        for st in STATUSES:
            self.assertEqual(m1.value("galvanid_jobs", status=st), totals[st], st)

        def delta(name, **labels):
            return m1.value(name, **labels) - m0.value(name, **labels)

        tr = "galvanid_job_transitions_total"
        self.assertEqual(delta(tr, **{"from": "new", "to": "queued"}), 7)
        # A command that cannot start is running (committed) until its
        # supervisor says so, then fails: the spawn does not wait for that.
        self.assertEqual(delta(tr, **{"from": "queued", "to": "running"}), 7)
        self.assertEqual(delta(tr, **{"from": "running", "to": "succeeded"}), 3)
        self.assertEqual(delta(tr, **{"from": "running", "to": "failed"}), 2)
        self.assertEqual(delta(tr, **{"from": "queued", "to": "failed"}), 0)
        self.assertEqual(delta(tr, **{"from": "running", "to": "paused"}), 1)
        self.assertEqual(sum(s.value for s in m1.samples(tr)), 7 + 7 + 3 + 2 + 1)

        self.assertEqual(delta("galvanid_process_spawns_total", result="ok"), 6)
        self.assertEqual(delta("galvanid_process_spawns_total", result="failed"), 1)
        self.assertEqual(check_histogram(self, m1, "galvanid_process_spawn_duration_seconds"), 6)
        self.assertEqual(delta("galvanid_process_exits_total", outcome="success"), 3)
        self.assertEqual(delta("galvanid_process_exits_total", outcome="failure"), 1)
        self.assertEqual(delta("galvanid_rule_firings_total", action="pause"), 1)
        self.assertEqual(delta("galvanid_rule_firings_total", action="notify"), 1)
        self.assertGreater(check_histogram(self, m1, "galvanid_store_commit_duration_seconds"),
                           check_histogram(self, m0, "galvanid_store_commit_duration_seconds"))
        self.assertEqual(m1.value("galvanid_store_write_errors_total"), 0)

        # Cancel the two live jobs: two more transitions, two cancelled exits.
        for job in (ruled, sleeper):
            status, _, body = d.request("POST", "/jobs/%d/cancel" % job["id"])
            self.assertEqual(status, 200, body)
        m2 = wait_for(lambda: (lambda m: m if m.value("galvanid_process_exits_total", outcome="cancelled") == 2
                               else None)(scrape(d)), what="two cancelled exits")
        self.assertEqual(m2.value(tr, **{"from": "running", "to": "cancelled"}), 1)
        self.assertEqual(m2.value(tr, **{"from": "paused", "to": "cancelled"}), 1)
        totals = job_totals(d)
        self.assertEqual(totals["cancelled"], 2)
        for st in STATUSES:
            self.assertEqual(m2.value("galvanid_jobs", status=st), totals[st], st)

    def test_stream_clients_and_frames(self):
        d = self.d
        job = d.create(kind="demo", demo_step_ms=1000)
        d.wait_status(job["id"], "running")
        m0 = scrape(d)
        self.assertEqual(m0.value("galvanid_stream_clients", transport="ws"), 0)
        self.assertEqual(m0.value("galvanid_stream_clients", transport="sse"), 0)
        sse = SseWatcher(d.port, job["id"])
        try:
            wait_for(lambda: sse.seen, what="the SSE snapshot")

            async def with_websocket():
                async with websockets.connect("ws://127.0.0.1:%d/ws/jobs" % d.port) as ws:
                    snapshot = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    self.assertEqual(snapshot["type"], "snapshot")
                    return scrape(d)  # while the WebSocket is open

            m1 = asyncio.run(with_websocket())
        finally:
            sse.close()
        self.assertEqual(m1.value("galvanid_stream_clients", transport="ws"), 1)
        self.assertEqual(m1.value("galvanid_stream_clients", transport="sse"), 1)
        # At least the snapshot each client read went through a socket.
        for transport in ("ws", "sse"):
            self.assertGreaterEqual(m1.value("galvanid_stream_frames_sent_total", transport=transport) -
                                    m0.value("galvanid_stream_frames_sent_total", transport=transport), 1, transport)
            for reason in ("coalesced", "discarded"):
                self.assertIn({"transport": transport, "reason": reason},
                              [s.labels for s in m1.samples("galvanid_stream_frames_dropped_total")])
        # The snapshots left in at least one flush and one write per client.
        self.assertGreaterEqual(m1.value("galvanid_stream_flushes_total") - m0.value("galvanid_stream_flushes_total"), 1)
        self.assertGreaterEqual(m1.value("galvanid_stream_writes_total") - m0.value("galvanid_stream_writes_total"), 2)
        self.assertEqual(m1.value("galvanid_stream_resyncs_total"), 0)
        # Every write says how long its frames waited in galvanid.
        self.assertGreaterEqual(m1.value("galvanid_stream_write_delay_seconds_count") -
                                m0.value("galvanid_stream_write_delay_seconds_count"), 2)
        self.assertEqual(m1.value("galvanid_http_requests_total", route="/ws/jobs", code="101"), 1)
        # Both gone: the gauges say so once galvanid noticed.
        wait_for(lambda: (lambda m: m.value("galvanid_stream_clients", transport="ws") == 0 and
                          m.value("galvanid_stream_clients", transport="sse") == 0)(scrape(d)),
                 what="no stream clients")
        status, _, _ = d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.assertEqual(status, 200)

    def test_requests_by_route_pattern(self):
        d = self.d
        job = d.create(command=["true"])
        d.wait_status(job["id"], "succeeded")
        for path in ("/jobs/%d" % job["id"], "/jobs/%d/events" % job["id"], "/jobs/123456", "/nope", "/jobs/1/x/y",
                     "/"):
            d.request("GET", path)
        # Every route of the OpenAPI document, with a method none of them
        # takes (a 405, or a 404 where the route looks the id up first),
        # counted under the route's own name.
        with open(os.path.join(ROOT, "web", "openapi.json")) as f:
            paths = list(json.load(f)["paths"])
        answers = {}
        for path in paths:
            concrete = re.sub(r"\{[^}]+\}", "x", path.replace("{id}", str(job["id"])))
            status, _, body = d.request("PUT", concrete, raw=b"", ctype=None)
            self.assertIn(status, (404, 405), (path, body))
            answers[path] = status
        # A body over the limit, refused by the HTTP layer before any route.
        with socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE) as s:
            s.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 2000000\r\n\r\n")
            self.assertIn(b" 413 ", s.recv(4096))

        m = scrape(d)
        req = "galvanid_http_requests_total"
        for path, status in answers.items():
            self.assertEqual(m.value(req, route=path, code=str(status)), 1, path)
        self.assertEqual(m.value(req, route="/jobs", code="201"), 1)
        self.assertGreaterEqual(m.value(req, route="/jobs/{id}", code="200"), 2)
        self.assertEqual(m.value(req, route="/jobs/{id}", code="404"), 1)
        self.assertEqual(m.value(req, route="/jobs/{id}/events", code="200"), 1)
        self.assertEqual(m.value(req, route="unmatched", code="404"), 2)
        self.assertEqual(m.value(req, route="/{file}", code="200"), 1)
        self.assertEqual(m.value(req, route="protocol", code="413"), 1)
        # The label's values are route patterns, never a raw path.
        self.assertEqual(m.label_values(req, "route") - set(paths), {"unmatched", "/{file}", "protocol"})
        for code in m.label_values(req, "code"):
            self.assertRegex(code, r"^[1-5]\d\d$")


class MetricsAuthTest(DaemonTest):
    extra_args = ("--token", FULL, "--read-token", READ)

    def test_same_tokens_as_the_api(self):
        d = self.d
        status, hdrs, body = d.request("GET", "/metrics")
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"]["code"], "unauthorized")
        self.assertTrue({k.lower(): v for k, v in hdrs.items()}["www-authenticate"].startswith("Bearer"))
        status, _, body = d.request("GET", "/metrics", headers={"Authorization": "Bearer wrong"})
        self.assertEqual(status, 401, body)
        full = scrape(d, {"Authorization": "Bearer " + FULL})
        self.assertIn("galvanid_jobs", full.families)
        read = scrape(d, {"Authorization": "Bearer " + READ})  # a scrape changes nothing
        self.assertEqual(read.value("galvanid_http_requests_total", route="/metrics", code="401"), 2)
        status, _, body = d.request("GET", "/metrics?token=" + READ)
        self.assertEqual(status, 200)
        Scrape(body)


@unittest.skipIf(storedb.ON_POSTGRES, storedb.SQLITE_ONLY)
class MetricsStoreFaultTest(FaultTest):
    def test_disk_full_is_counted_with_its_cause(self):
        d = self.d
        m0 = scrape(d)
        self.fault("full")
        status, _, body = d.request("POST", "/jobs", {"command": ["true"]})
        self.assertEqual(status, 503, body)
        m1 = scrape(d)
        self.assertEqual(m1.value("galvanid_store_available"), 0)
        self.assertEqual(m1.value("galvanid_store_faults_total", cause="disk_full") -
                         m0.value("galvanid_store_faults_total", cause="disk_full"), 1)
        self.assertGreaterEqual(m1.value("galvanid_store_write_errors_total"), 1)
        self.assertEqual(m1.value("galvanid_http_requests_total", route="/jobs", code="503"), 1)
        self.fault("")
        self.wait_recovered()
        m2 = scrape(d)
        self.assertEqual(m2.value("galvanid_store_available"), 1)
        self.assertEqual(m2.value("galvanid_store_faults_total", cause="disk_full"),
                         m1.value("galvanid_store_faults_total", cause="disk_full"))
        job = d.create(command=["true"])
        d.wait_status(job["id"], "succeeded")
        self.assertGreater(scrape(d).value("galvanid_store_commit_duration_seconds_count"),
                           m2.value("galvanid_store_commit_duration_seconds_count"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
