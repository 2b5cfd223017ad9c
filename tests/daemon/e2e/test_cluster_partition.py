#!/usr/bin/python3
"""A network partition (issue 18): one node's link to PostgreSQL is cut while its process lives on.

The node runs in a network namespace of its own (`ip netns`), joined to the host by a veth pair; PostgreSQL
listens on the host's end too.  Two more nodes run in the host's namespace.  Cutting the link (the host's end
down) shows:

  - the cut-off node's own reaction: unable to renew its heartbeat, it kills what it runs before the others can
    start it again ("job.fenced" in its log, earlier than the restart elsewhere) and stops, exit 75;
  - lease expiry on the others: the node is marked lost; its retryable job runs again on another node (attempt
    2), its at_most_once job fails ("node lost");
  - once the link is back, the node starts again under a new epoch and joins; the job stays where it went.

Needs root and network namespaces; skips, saying why, where they are not permitted."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "pg"))
from pgserver import PgServer  # noqa: E402
from test_cluster import GALVANID, Node  # noqa: E402
from test_e2e import DEADLINE, alive, end_leftover_jobs, wait_for  # noqa: E402

LEASE = 5.0
NS = "galvani-part-%d" % os.getpid()
HOST_IF, NODE_IF = "gvh%d" % (os.getpid() % 100000), "gvn%d" % (os.getpid() % 100000)
HOST_IP, NODE_IP = "10.231.7.1", "10.231.7.2"


def sh(*argv, check=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), p.stderr.strip()))
    return p


def netns_refusal():
    """None if namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    p = sh("ip", "netns", "add", NS, check=False)
    if p.returncode != 0:
        return "ip netns add refused: %s" % p.stderr.strip()
    return None


REFUSED = netns_refusal()


def tearDownModule():
    sh("ip", "link", "del", HOST_IF, check=False)
    sh("ip", "netns", "del", NS, check=False)


class CutNode(Node):
    """A node inside the namespace, serving on its end of the link."""
    host = NODE_IP

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = NODE_IP + ":0"
        return ["ip", "netns", "exec", NS] + cmd + ["--insecure"]


@unittest.skipIf(REFUSED, "network partition test skipped: %s" % REFUSED)
class Partition(unittest.TestCase):
    def setUp(self):
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NODE_IF)
        sh("ip", "link", "set", NODE_IF, "netns", NS)
        sh("ip", "addr", "add", HOST_IP + "/30", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", NODE_IP + "/30", "dev", NODE_IF)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", NODE_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        self.pg = PgServer(also_listen=(HOST_IP, "10.231.7.0/30")).start()
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-partition-")
        self.dir = self.tmp.name
        self.pg.create_database("part")
        local, remote = self.pg.dsn_for("part"), self.pg.dsn_for("part").replace("127.0.0.1", HOST_IP)
        args = ("--max-running", "2", "--lease", str(LEASE))
        self.a = Node(self.dir, "a", local, *args)
        self.b = Node(self.dir, "b", local, *args)
        self.n = CutNode(self.dir, "n", remote, *args)

    def tearDown(self):
        sh("ip", "link", "set", HOST_IF, "up", check=False)
        for node in (self.a, self.b, self.n):
            if node.proc.poll() is None:
                node.stop()
            end_leftover_jobs(node.run_dir)
        self.pg.stop()
        sh("ip", "link", "del", HOST_IF, check=False)
        self.tmp.cleanup()

    def stamp(self, node, pattern):
        """The time (the log's ISO stamp) of the first line of node's log matching pattern."""
        for line in node.log().splitlines():
            if re.search(pattern, line):
                return line.split(" ", 1)[0]
        return None

    def test_cut_off_node_fences_itself_and_the_others_take_over(self):
        a, b, n = self.a, self.b, self.n
        sleeper = ["sleep", "3600"]
        retry = n.wait_status(n.create(command=sleeper, name="retry", max_retries=1)["id"], "running")
        once = n.wait_status(n.create(command=sleeper, name="once", at_most_once=True)["id"], "running")
        self.assertEqual((retry["node"], once["node"]), ("n", "n"))
        wait_for(lambda: a.request("GET", "/jobs/%d" % retry["id"])[0] == 200, what="a to see n's job")

        sh("ip", "link", "set", HOST_IF, "down")  # the link, not the process
        try:
            rc = n.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError("the cut-off node did not stop:\n" + n.log()[-4000:])
        self.assertEqual(rc, 75, n.log()[-3000:])
        self.assertIn("cluster.fenced", n.log())
        self.assertFalse(alive(retry["pid"]) or alive(once["pid"]), "the cut-off node killed its jobs")
        moved = wait_for(lambda: (lambda j: j if j["status"] == "running" and j["attempts"] == 2 and j["pid"]
                                  else None)(a.job(retry["id"])), what="the retryable job to run again")
        self.assertIn(moved["node"], ("a", "b"))
        failed = wait_for(lambda: (lambda j: j if j["status"] == "failed" else None)(b.job(once["id"])),
                          what="the at_most_once job to fail")
        self.assertIn("node lost: n", failed["error"])
        # the cut-off node stopped the job before another node started it again
        fenced = self.stamp(n, r"job\.fenced job=%d " % retry["id"])
        owner = {"a": a, "b": b}[moved["node"]]
        restarted = self.stamp(owner, r"job\.status job=%d .*to=running" % retry["id"])
        self.assertTrue(fenced and restarted and fenced < restarted, (fenced, restarted))
        nodes = {x["id"]: x["state"] for x in a.request("GET", "/nodes")[2]["nodes"]}
        self.assertEqual(nodes, {"a": "up", "b": "up", "n": "lost"})

        sh("ip", "link", "set", HOST_IF, "up")
        # a node that cannot reach its database at start exits (its service manager retries): wait for the link
        wait_for(lambda: sh("ip", "netns", "exec", NS, "bash", "-c", "exec 3<>/dev/tcp/%s/%d" % (HOST_IP, self.pg.port),
                            check=False).returncode == 0, what="the link to be back")
        n.start()
        wait_for(lambda: {x["id"]: x["state"] for x in a.request("GET", "/nodes")[2]["nodes"]}.get("n") == "up",
                 what="n to join again")
        self.assertEqual(n.job(retry["id"])["node"], moved["node"])
        self.assertTrue(alive(moved["pid"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
