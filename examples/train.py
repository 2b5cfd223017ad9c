#!/usr/bin/python3
"""A toy trainer for galvanid with live parameters (docs/protocol.md).

Gradient descent with momentum on a synthetic least-squares problem: find w
minimising mean((X w - y)^2) / 2 for a fixed random X (200 x 10) and
y = X w_true + noise.  Python's standard library only.

Every step it reports on the control fd ($GALVANI_CONTROL_FD):

    metric loss 0.8312      the training loss
    metric lr 0.01          the learning rate in use
    progress 42/600

and between steps it reads galvanid's commands there.  Run it in
cooperative mode (`"pause_mode": "cooperative"`, `galvani run
--pause-mode cooperative`) to get them:

    params N {"lr": 0.05, "momentum": 0.9}   use these from the next step on,
                                             answer "ack params N"
    pause / resume / cancel                  answered with "ack ..."

So `galvani set ID lr=0.05` (or the dashboard's params editor) changes the
slope of the loss curve while it runs (0.01: slow, 0.3: fast); lr above about
2.2 (with momentum 0.5) makes it diverge,
which it reports as a status and recovers from by starting again from zero.

Outside galvanid (no $GALVANI_CONTROL_FD) it prints "::" lines on stdout.

    train.py [--steps N] [--step-ms MS] [--lr LR] [--momentum M] [--seed S]
"""
import argparse
import json
import math
import os
import random
import select
import sys
import time

CTL = int(os.environ.get("GALVANI_CONTROL_FD", "-1"))


def send(line):
    """One protocol line (the "::" prefix is optional on the control fd)."""
    if CTL >= 0:
        try:
            os.write(CTL, (line + "\n").encode())
        except OSError:
            pass  # galvanid went away: nothing to report to
    else:
        print("::" + line, flush=True)


class Commands:
    """Lines galvanid writes on the control fd, read without blocking."""

    def __init__(self):
        self.pending = b""
        self.closed = CTL < 0

    def next(self, timeout):
        """The next command line, or None if none arrived within timeout seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if self.closed:
                time.sleep(max(left, 0))
                return None
            if left <= 0 or not select.select([CTL], [], [], left)[0]:
                return None
            chunk = os.read(CTL, 65536)
            if not chunk:
                self.closed = True
                continue
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode("utf-8", "replace")


def make_problem(seed, n=200, d=10):
    rng = random.Random(seed)
    w_true = [rng.uniform(-2, 2) for _ in range(d)]
    xs = [[rng.gauss(0, 1) for _ in range(d)] for _ in range(n)]
    ys = [sum(a * b for a, b in zip(x, w_true)) + rng.gauss(0, 0.1) for x in xs]
    return xs, ys


def loss_and_grad(xs, ys, w):
    n, d = len(xs), len(w)
    grad = [0.0] * d
    total = 0.0
    for x, y in zip(xs, ys):
        r = sum(a * b for a, b in zip(x, w)) - y
        total += r * r
        for j in range(d):
            grad[j] += r * x[j]
    return total / (2 * n), [g / n for g in grad]


def apply_params(params, text):
    """Merge a params object into params, keeping only usable numbers."""
    try:
        new = json.loads(text)
    except ValueError:
        send("status ignored params: not JSON")
        return
    for key in ("lr", "momentum"):
        v = new.get(key) if isinstance(new, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0:
            params[key] = float(v)


def handle(cmd, params, commands):
    """Obey one command; returns False when the job must stop (cancel)."""
    word, _, rest = cmd.partition(" ")
    if word == "params":
        rev, _, text = rest.partition(" ")
        if rev.isdigit():  # "params N {json}"
            apply_params(params, text)
            send("ack params " + rev)
        else:  # "params {json}" from a galvanid without revisions
            apply_params(params, rest)
            send("ack params")
        send("metric lr %.6g" % params["lr"])
    elif word == "pause":
        send("ack pause")
        send("status paused")
        while True:  # block until resume or cancel, still obeying params
            nxt = commands.next(3600)
            if nxt is None:
                continue
            w = nxt.partition(" ")[0]
            if w == "resume":
                send("ack resume")
                send("status training")
                break
            if w == "cancel" or not handle(nxt, params, commands):
                send("ack cancel")
                return False
    elif word == "cancel":
        send("ack cancel")
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description="toy trainer with live lr / momentum (galvanid)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--step-ms", type=float, default=100.0, help="wall time per step (ms)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.steps < 1 or args.step_ms < 0:
        ap.error("--steps must be >= 1 and --step-ms >= 0")

    xs, ys = make_problem(args.seed)
    params = {"lr": args.lr, "momentum": args.momentum}
    w = [0.0] * len(xs[0])
    vel = [0.0] * len(w)
    commands = Commands()
    send("status training")
    for step in range(1, args.steps + 1):
        started = time.monotonic()
        loss, grad = loss_and_grad(xs, ys, w)
        if not math.isfinite(loss) or loss > 1e12:
            send("status diverged at lr %.6g: starting again from zero" % params["lr"])
            w = [0.0] * len(w)
            vel = [0.0] * len(w)
            loss, grad = loss_and_grad(xs, ys, w)
        for j in range(len(w)):
            vel[j] = params["momentum"] * vel[j] - params["lr"] * grad[j]
            w[j] += vel[j]
        send("metric loss %.6g" % loss)
        send("metric lr %.6g" % params["lr"])
        send("progress %d/%d" % (step, args.steps))
        # The rest of the step's time is spent waiting for commands.
        while True:
            left = args.step_ms / 1000.0 - (time.monotonic() - started)
            cmd = commands.next(max(left, 0))
            if cmd is None:
                break
            if not handle(cmd, params, commands):
                send("status cancelled at step %d" % step)
                return 0
    send("status done: loss %.6g" % loss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
