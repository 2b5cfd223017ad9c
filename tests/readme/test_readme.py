#!/usr/bin/python3
"""README.md, followed literally: its shell blocks, run in order against the real galvanid.

Every ```sh / ```bash / ```console block of README.md must be preceded by a marker (an HTML comment, invisible
on GitHub) right before its fence:

    <!-- readme-test: run -->
    <!-- readme-test: skip (why: needs root, installs packages, starts a server in the foreground, ...) -->
    <!-- readme-test: run; substitute `OLD` -> `NEW` (why) -->

An unmarked block, a skip without a reason, or a substitution whose OLD text is no longer in its block fails the
test, so the README cannot drift away from what is tested.  A ```python block may carry a marker too: it then
runs, in its place in the order, with /usr/bin/python3 on this tree's galvani module (build/python).  A substitution is only for shortening an example
through its documented parameters; each must say why.

How the blocks run, and the only liberties taken with them:

- In a scratch directory holding a copy of the repository's tracked files and `build`, a symlink to this CTest
  build tree: the README's "repository root" after `bash scripts/run`.  HOME is a scratch directory too.
- galvanid is started the way scripts/run's last line starts it (`build/src/daemon/galvanid`, no arguments, from
  the repository root; checked against scripts/run), but on a free port: GALVANI_LISTEN (galvanid) and
  GALVANI_URL (the CLI) name that port, and `localhost:8000` / `127.0.0.1:8000` in the blocks are rewritten to it.
  That is the one rewrite of the commands besides the markers' substitutions.
- PATH is the system's (/usr/sbin:/usr/bin:/sbin:/bin): `galvani` and `galvanid` are found only once the README
  has put them on PATH, and the test checks at the end that `galvani` resolves into the build tree.
- All runnable blocks run in order in ONE `bash` process with `set -euo pipefail` (variables set by one block
  are used by later ones, as in the user's shell); every block must complete.  curl is run with
  --fail-with-body (and --no-progress-meter), so an HTTP error fails the block even where the README's curl
  does not say so.
- A line whose comment says "until Ctrl-C" is a stream a person watches and stops: the test runs it with a
  stdin that stays open (like a terminal), waits until it has printed a JSON object while still running, then
  sends SIGINT to its process group, as Ctrl-C would.  A stream that exits by itself, or prints nothing, fails.
- Waits are on conditions (the README's own `until` loops; the streams above), never on fixed times.

Run with GALVANI_BUILD_DIR=/path/to/the/cmake/build (CTest sets it).
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GALVANI_BUILD_DIR", os.path.join(ROOT, "build"))
# The daemon suite's helpers: reading a file, waiting on a condition, ending
# the jobs a run left under its supervisors.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon", "e2e"))
from test_e2e import end_leftover_jobs, read, wait_for  # noqa: E402

DEADLINE = 30.0  # seconds any single wait may take (a busy machine is slow, not wrong)
RUN_TIMEOUT = 500.0  # the whole README; it takes well under a minute on an idle machine
SHELL_LANGS = {"sh", "bash", "shell", "console"}
# A ```python block may be marked too: it then runs with /usr/bin/python3 on
# the galvani module of this tree (build/python), in the same order.
RUNNABLE_LANGS = SHELL_LANGS | {"python"}
MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->", re.S)
SUBST = re.compile(r"substitute\s+`([^`]+)`\s*->\s*`([^`]*)`")
STREAM = re.compile(r"#[^'\"]*until Ctrl-C")
PORT_RE = re.compile(r"\b(localhost|127\.0\.0\.1):8000\b")


class Block:
    def __init__(self, line, lang, text, marker):
        self.line, self.lang, self.text, self.marker = line, lang, text, marker


def parse_readme(text):
    """The fenced blocks of README.md with the marker before each (None if none), and the problems found."""
    lines = text.split("\n")
    blocks, problems = [], []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not re.match(r"^```\s*$", lines[j]):
            j += 1
        if j == len(lines):
            problems.append("README.md:%d: unterminated code block" % (start + 1))
            break
        # The marker: an HTML comment ending on the line right before the fence.
        marker = None
        if start > 0 and lines[start - 1].rstrip().endswith("-->"):
            k = start - 1
            while k >= 0 and "<!--" not in lines[k]:
                k -= 1
            mm = MARKER.search("\n".join(lines[k:start]))
            if mm:
                marker = " ".join(mm.group(1).split())
        blocks.append(Block(start + 2, lang, "\n".join(lines[start + 1:j]), marker))
        i = j + 1
    # Markers must sit right before a block.
    used = {b.line - 2 for b in blocks if b.marker is not None}
    for m in MARKER.finditer(text):
        end_line = text.count("\n", 0, m.end())  # 0-based line of the comment's end
        if end_line + 1 not in used:
            problems.append("README.md:%d: a readme-test marker not right before a code block"
                            % (end_line + 1))
    return blocks, problems


def classify(blocks):
    """(runnable blocks, skipped blocks, problems)."""
    runs, skips, problems = [], [], []
    for b in blocks:
        if b.lang not in SHELL_LANGS and (b.lang not in RUNNABLE_LANGS or b.marker is None):
            if b.marker is not None:
                problems.append("README.md:%d: a readme-test marker on a ```%s block" % (b.line, b.lang))
            continue
        if b.marker is None:
            problems.append("README.md:%d: ```%s block without a marker (<!-- readme-test: run --> or "
                            "<!-- readme-test: skip (reason) -->)" % (b.line, b.lang))
            continue
        if b.marker.startswith("skip"):
            if not re.match(r"^skip\s*\(.*\S.*\)$", b.marker):
                problems.append("README.md:%d: skip needs a reason: skip (why)" % b.line)
            skips.append(b)
            continue
        if not re.match(r"^run\b", b.marker):
            problems.append("README.md:%d: unknown readme-test marker %r" % (b.line, b.marker))
            continue
        if b.lang == "console":
            problems.append("README.md:%d: a ```console block cannot run: make it ```sh with the output in "
                            "comments" % b.line)
            continue
        text = b.text
        rest = b.marker[3:].strip()
        for old, new in SUBST.findall(rest):
            if old not in text:
                problems.append("README.md:%d: substitute `%s`: not in the block any more" % (b.line, old))
            text = text.replace(old, new)
        rest = SUBST.sub("", rest).strip(" ;")
        if rest and not re.match(r"^\(.*\)$", rest):
            problems.append("README.md:%d: cannot read the marker %r (run; substitute `A` -> `B` (why))"
                            % (b.line, b.marker))
        if SUBST.search(b.marker) and not rest:
            problems.append("README.md:%d: a substitution needs a reason in parentheses" % b.line)
        b.run_text = text
        runs.append(b)
    return runs, skips, problems


PREAMBLE = r'''
set -euo pipefail
set -m  # job control: each background command in its own process group, as in a terminal
trap 'echo "$LINENO $?" > "$READMETEST_STATE/failed_at"' ERR

# An HTTP error fails the block (the README's curl lines do not all say --fail); no progress meter in the log.
curl() { command curl --fail-with-body --no-progress-meter "$@"; }

# A stream a person watches until Ctrl-C: run it with a stdin that stays open, wait until it printed a
# JSON object while still running, then SIGINT its process group.  The line comes on stdin.
readme_stream() {
    local cmd out fifo fd pid i
    cmd=$(cat)
    out=$(mktemp "$READMETEST_STATE/stream.XXXXXX")
    fifo=$out.stdin
    mkfifo "$fifo"
    exec {fd}<>"$fifo"
    eval "$cmd" <"$fifo" >"$out" 2>&1 &
    pid=$!
    for ((i = 0; i < 300; i++)); do
        if grep -q '{' "$out" || ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "readme_stream: it ended before Ctrl-C: $cmd" >&2; cat "$out" >&2; exec {fd}>&-; return 1
    fi
    if ! grep -q '{' "$out"; then
        echo "readme_stream: no JSON within 30 s: $cmd" >&2; cat "$out" >&2
        kill -KILL -- -"$pid"; exec {fd}>&-; return 1
    fi
    kill -INT -- -"$pid"
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "readme_stream: Ctrl-C did not stop it: $cmd" >&2; kill -KILL -- -"$pid"; exec {fd}>&-; return 1
    fi
    wait "$pid" || true
    exec {fd}>&-
    echo "[readme_stream: stopped with Ctrl-C after it printed:]"
    cut -c -160 "$out" | head -n 4
}
'''

EPILOGUE = r'''
printf '\n=== after the README ===\n'
where=$(command -v galvani)
if [ "$where" != "$READMETEST_ROOT/build/src/cli/galvani" ]; then
    echo "galvani resolved to '$where', not to the build tree the README put on PATH" >&2
    exit 1
fi
echo "$where"
echo done > "$READMETEST_STATE/complete"
'''


def build_script(runs, port):
    """The bash script, and for each of its lines the README.md line it came from (0: the test's own)."""
    out, origin = [], []

    def emit(text, readme_line=0):
        for k, ln in enumerate(text.split("\n")):
            out.append(ln)
            origin.append(readme_line + k if readme_line else 0)

    emit(PREAMBLE)
    for n, b in enumerate(runs, 1):
        emit("READMETEST_BLOCK=%d\nprintf '\\n=== README.md:%d (block %d) ===\\n'" % (n, b.line, n))
        if b.lang == "python":
            # In the sanitizer tree the module is built with ASan: its runtime
            # is preloaded into the (uninstrumented) interpreter, as for the
            # module's own tests (tests/CMakeLists.txt), leaks not counted.
            preload = os.environ.get("GALVANI_README_PY_PRELOAD", "")
            asan = ("LD_PRELOAD=%s PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0 " % shlex.quote(preload)
                    if preload else "")
            emit(asan + 'PYTHONPATH="$PWD/build/python" /usr/bin/python3 - <<\'READMETEST_PY\'')
            emit(b.run_text, b.line)
            emit("READMETEST_PY")
            emit('echo %d >> "$READMETEST_STATE/done"' % n)
            continue
        for k, ln in enumerate(b.run_text.split("\n")):
            ln = PORT_RE.sub(lambda m: "%s:%d" % (m.group(1), port), ln)
            if not ln.lstrip().startswith("#") and STREAM.search(ln):
                emit("readme_stream <<'READMETEST_STREAM'")
                emit(ln, b.line + k)
                emit("READMETEST_STREAM")
            else:
                emit(ln, b.line + k)
        emit('echo %d >> "$READMETEST_STATE/done"' % n)
    emit(EPILOGUE)
    return "\n".join(out) + "\n", origin


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] != "Z"


def copy_repository(dst):
    """The tracked files of the repository (what a fresh clone has), or everything but build trees."""
    try:
        names = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True, capture_output=True,
                               timeout=DEADLINE).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        names = None
    if names:
        for name in filter(None, names):
            src = os.path.join(ROOT, name)
            if not os.path.isfile(src):
                continue  # deleted in the work tree
            target = os.path.join(dst, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)
    else:
        shutil.copytree(ROOT, dst, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("build*", ".git", "node_modules"))


class ReadmeMarkers(unittest.TestCase):
    """Every shell block is marked, and the marker syntax is understood (no daemon needed)."""

    def test_every_shell_block_is_marked(self):
        blocks, problems = parse_readme(read(os.path.join(ROOT, "README.md")))
        runs, skips, more = classify(blocks)
        problems += more
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertGreaterEqual(len(runs), 5, "the walk-through's blocks run")
        for b in skips:
            print("skipped README.md:%d: %s" % (b.line, b.marker), file=sys.stderr)

    def test_parser_catches_drift(self):
        text = "\n".join([
            "```sh", "echo unmarked", "```",
            "<!-- readme-test: skip -->", "```sh", "echo no reason", "```",
            "<!-- readme-test: run; substitute `gone` -> `x` (why) -->", "```sh", "echo here", "```",
            "<!-- readme-test: run -->", "", "text", "```sh", "echo marker too far", "```",
            "```console", "$ echo console", "```",
        ])
        blocks, problems = parse_readme(text)
        runs, _, more = classify(blocks)
        problems += more
        joined = "\n".join(problems)
        self.assertIn("README.md:2: ```sh block without a marker", joined)
        self.assertIn("README.md:6: skip needs a reason", joined)
        self.assertIn("substitute `gone`: not in the block any more", joined)
        self.assertIn("README.md:12: a readme-test marker not right before a code block", joined)
        self.assertIn("README.md:16: ```sh block without a marker", joined)
        self.assertIn("README.md:19: ```console block without a marker", joined)

    def test_streams_and_port(self):
        b = Block(10, "sh", "curl -N localhost:8000/events   # until Ctrl-C\n# until Ctrl-C\n"
                            "curl 127.0.0.1:8000/x", "run")
        b.run_text = b.text
        script, origin = build_script([b], 4321)
        self.assertIn("readme_stream <<'READMETEST_STREAM'\ncurl -N localhost:4321/events", script)
        self.assertIn("\n# until Ctrl-C\ncurl 127.0.0.1:4321/x\n", script)
        self.assertEqual(origin[script.split("\n").index("curl 127.0.0.1:4321/x")], 12)


class ReadmeWalkthrough(unittest.TestCase):
    """The README's runnable blocks, in order, in one shell, against the real galvanid."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-readme-")
        self.root = os.path.join(self.tmp.name, "galvani")  # the "repository root"
        self.state = os.path.join(self.tmp.name, "state")
        self.home = os.path.join(self.tmp.name, "home")
        for d in (self.root, self.state, self.home, os.path.join(self.tmp.name, "tmp")):
            os.makedirs(d)
        copy_repository(self.root)
        os.symlink(os.path.abspath(BUILD), os.path.join(self.root, "build"))
        self.daemon = None

    def tearDown(self):
        # The galvanid the README started last (its pid file), then the first one if the README never got to
        # kill it, then every job left running.
        pid_file = os.path.join(self.root, "galvani.db.pid")
        try:
            pid = int(read(pid_file))
        except (OSError, ValueError):
            pid = None
        if pid and alive(pid) and (self.daemon is None or pid != self.daemon.pid):
            os.kill(pid, signal.SIGTERM)
            try:
                wait_for(lambda: not alive(pid), what="galvanid to stop")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        end_leftover_jobs(os.path.join(self.root, "galvani.db.run"))
        self.tmp.cleanup()

    def start_galvanid_like_scripts_run(self, env):
        run = read(os.path.join(ROOT, "scripts", "run"))
        self.assertIn("program=$root/build/src/daemon/galvanid", run,
                      "scripts/run no longer starts build/src/daemon/galvanid: start galvanid here as it does")
        self.assertRegex(run, r'\nexec "\$program" "\$@"\n',
                         "scripts/run starts galvanid differently now: start it here the same way")
        self.daemon_log = open(os.path.join(self.state, "galvanid-first.log"), "w")
        self.daemon = subprocess.Popen([os.path.join(self.root, "build/src/daemon/galvanid")], cwd=self.root,
                                       env=env, stdin=subprocess.DEVNULL, stdout=self.daemon_log,
                                       stderr=self.daemon_log)
        self.daemon_log.close()
        # Reap it as soon as the README kills it (a terminal's shell would): `kill -0` then sees it gone.
        threading.Thread(target=self.daemon.wait, daemon=True).start()
        pid_file = os.path.join(self.root, "galvani.db.pid")
        wait_for(lambda: os.path.exists(pid_file) and read(pid_file) == "%d\n" % self.daemon.pid
                 or self.daemon.poll() is not None, what="galvanid to listen (its pid file)")
        self.assertIsNone(self.daemon.poll(), read(os.path.join(self.state, "galvanid-first.log")))

    def test_readme_walkthrough(self):
        blocks, problems = parse_readme(read(os.path.join(ROOT, "README.md")))
        runs, _, more = classify(blocks)
        self.assertEqual(problems + more, [], "\n".join(problems + more))
        port = free_port()
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": self.home,
            "TMPDIR": os.path.join(self.tmp.name, "tmp"),
            "LANG": "C.UTF-8",
            "GALVANI_LISTEN": "127.0.0.1:%d" % port,
            "GALVANI_URL": "http://127.0.0.1:%d" % port,
            "READMETEST_STATE": self.state,
            "READMETEST_ROOT": self.root,
        }
        for k, v in os.environ.items():  # the sanitizer tree's settings (GALVANI_TEST_ENV)
            if k.split("_")[0] in ("ASAN", "UBSAN", "LSAN"):
                env[k] = v
        self.start_galvanid_like_scripts_run(env)

        script, origin = build_script(runs, port)
        script_path = os.path.join(self.state, "readme.sh")
        with open(script_path, "w") as f:
            f.write(script)
        out_path = os.path.join(self.state, "output")
        started = time.monotonic()
        with open(out_path, "w") as out:
            # stdout to a file, not a pipe: the galvanid the README starts in the background keeps it open.
            p = subprocess.Popen(["bash", "--noprofile", "--norc", script_path], cwd=self.root, env=env,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            try:
                rc = p.wait(RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                rc = p.wait()
        output = read(out_path)
        sys.stderr.write(output)
        sys.stderr.write("\n(the README's blocks took %.1f s)\n" % (time.monotonic() - started))

        done = read(os.path.join(self.state, "done")).split() if os.path.exists(
            os.path.join(self.state, "done")) else []
        if len(done) < len(runs):
            failed = runs[len(done)]
            where = ""
            failed_at = os.path.join(self.state, "failed_at")
            if os.path.exists(failed_at):
                line, status = read(failed_at).split()[:2]
                src = origin[int(line) - 1] if 0 < int(line) <= len(origin) else 0
                where = " at README.md:%s (status %s): %s" % (
                    src, status, script.split("\n")[int(line) - 1].strip()) if src else \
                    " in the test's own code, line %s of %s (status %s)" % (line, script_path, status)
            self.fail("README block %d (README.md:%d) did not complete%s; bash exited %d\n%s" % (
                len(done) + 1, failed.line, where, rc, failed.run_text))
        self.assertEqual(rc, 0, "bash exited %d after every block" % rc)
        self.assertTrue(os.path.exists(os.path.join(self.state, "complete")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
