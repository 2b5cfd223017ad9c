#!/usr/bin/python3
"""The Debian package, end to end.

Builds the .deb of this build tree (`cpack -G DEB`), unpacks it into a scratch
root with `dpkg-deb -x` (nothing is installed on the machine), and checks what
a user of the package relies on:

- the control data: its Depends name the package of every library the
  packaged binaries need (derived from their ELF headers and dpkg's database,
  so the check follows the build, not a list kept by hand);
- the files: daemon, supervisor, CLI, library + headers + galvani.pc (with
  the package's prefix), man pages, completions, the systemd unit;
- the unit: galvanid is started the way its ExecStart starts it (the token
  and the read-only token from credential files, options from $GALVANID_OPTS),
  from the unpacked root, on an ephemeral port with a temp state dir, and the
  unpacked CLI runs a job through it and sees it succeed;
- the man pages render without a warning and cover every command and option
  that `galvani --help` and `galvanid --help` list today;
- the completions parse, and the bash one offers every command and option
  those help texts list (and the ids of the daemon's jobs).

Run with CPACK=/path/to/cpack GALVANI_CPACK_CONFIG=<build>/CPackConfig.cmake
(CTest sets both: tests/package/CMakeLists.txt).
"""
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon", "e2e"))
from test_e2e import DEADLINE, end_leftover_jobs  # noqa: E402

CPACK = os.environ.get("CPACK", "cpack")
CPACK_CONFIG = os.environ["GALVANI_CPACK_CONFIG"]
PREFIX = "/usr"  # CPACK_PACKAGING_INSTALL_PREFIX (cmake/GalvaniPackage.cmake)
UNIT = "usr/lib/systemd/system/galvanid.service"


def run(*cmd, **kw):
    """Run cmd; its stdout.  A failure shows the command and its stderr."""
    p = subprocess.run(list(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=kw.pop("timeout", 120), **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited with %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def help_options(text):
    """The options a --help text lists: every option in its usage block (up
    to the first blank line), and those that start a line of the option
    table (left of the description, which is 2+ spaces away).  Prose
    mentioning a flag ("run by /bin/sh -c") is not an option."""
    flag = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
    usage, _, rest = text.partition("\n\n")
    found = set(flag.findall(usage))
    for line in rest.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            found.update(flag.findall(re.split(r"\s{2,}", stripped)[0]))
    return found


def help_commands(text):
    """The commands `galvani --help` lists: the first word of each indented
    line that is not an option."""
    return {m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", text, re.M)}


def unit_settings(path):
    """[Service] of a unit file as {key: [values]}, continuation lines joined
    as systemd joins them (the backslash becomes a space)."""
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def systemd_command(line, creds_dir):
    """ExecStart's argv as systemd would build it: the %d specifier, %%, and
    $$ for a literal $.  The unit must not rely on systemd's own $VAR
    expansion (so that this is all there is to it)."""
    line = line.replace("%%", "\0").replace("%d", creds_dir).replace("\0", "%")
    assert "$" not in line.replace("$$", ""), "unescaped $ in ExecStart: " + line
    return shlex.split(line.replace("$$", "$"))


class Deb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="galvani-deb-")
        pkgdir = os.path.join(cls.tmp.name, "pkg")
        # -B: the package and CPack's staging tree go to the temp dir, not
        # into the build tree.
        run(CPACK, "--config", CPACK_CONFIG, "-G", "DEB", "-B", pkgdir)
        debs = glob.glob(os.path.join(pkgdir, "*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]
        cls.root = os.path.join(cls.tmp.name, "root")
        run("dpkg-deb", "-x", cls.deb, cls.root)
        cls.control = run("dpkg-deb", "-f", cls.deb)
        cls.contents = run("dpkg-deb", "-c", cls.deb)
        cls.bindir = os.path.join(cls.root, PREFIX.lstrip("/"), "bin")
        cls.galvani = os.path.join(cls.bindir, "galvani")
        cls.galvanid = os.path.join(cls.bindir, "galvanid")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, rel):
        return os.path.join(self.root, rel)

    def field(self, name):
        m = re.search(r"^%s: (.*)$" % name, self.control, re.M)
        self.assertTrue(m, "no %s field in:\n%s" % (name, self.control))
        return m.group(1)

    def help(self, *args):
        return run(args[0], *args[1:], "--help")

    # -- the package ---------------------------------------------------------

    def test_control(self):
        self.assertEqual(self.field("Package"), "galvani")
        self.assertEqual(self.field("Architecture"), run("dpkg", "--print-architecture").strip())
        self.assertRegex(self.field("Version"), r"^\d+\.\d+\.\d+")
        self.assertIn("Maintainer", self.control)
        scripts = run("dpkg-deb", "-I", self.deb)
        for name in ("postinst", "prerm", "postrm", "triggers", "shlibs"):
            self.assertIn(" " + name, scripts)

    def test_depends_cover_every_needed_library(self):
        depends = {d.strip().split()[0] for d in self.field("Depends").split(",")}
        own = {os.path.basename(p) for p in glob.glob(self.path("usr/lib/**/*.so*"), recursive=True)}
        elves = [p for p in glob.glob(self.path("usr/bin/*")) + glob.glob(self.path("usr/lib/**/*.so.*"),
                                                                              recursive=True)
                 if os.path.isfile(p) and not os.path.islink(p)]
        needed = set()
        for elf in elves:
            needed |= set(re.findall(r"\(NEEDED\).*\[(.+)\]", run("readelf", "-d", elf)))
        self.assertIn("libc.so.6", needed)
        for soname in sorted(needed - own):
            owners = set()
            for line in run("dpkg-query", "-S", "*/" + soname).splitlines():
                pkgs, _, path = line.partition(": ")
                if path.endswith("/" + soname):
                    owners |= {p.strip().split(":")[0] for p in pkgs.split(",")}
            self.assertTrue(owners & depends, "%s (from %s) is not in Depends: %s" % (soname, owners, depends))

    def test_files(self):
        for rel in ("usr/bin/galvanid", "usr/bin/galvani-shim", "usr/bin/galvani",
                    "usr/include/galvani/signals.h",
                    "usr/share/man/man1/galvani.1", "usr/share/man/man8/galvanid.8",
                    "usr/share/man/man7/galvani-protocol.7",
                    "usr/share/bash-completion/completions/galvani",
                    "usr/share/zsh/vendor-completions/_galvani", UNIT):
            self.assertTrue(os.path.isfile(self.path(rel)), rel + " is not in the package:\n" + self.contents)
        for rel in ("usr/bin/galvanid", "usr/bin/galvani-shim", "usr/bin/galvani"):
            self.assertTrue(os.access(self.path(rel), os.X_OK), rel)
        libs = glob.glob(self.path("usr/lib/**/libgalvani.so.0"), recursive=True)
        self.assertEqual(len(libs), 1, self.contents)
        self.assertTrue(glob.glob(os.path.join(os.path.dirname(libs[0]), "libgalvani.a")))
        pcs = glob.glob(self.path("usr/lib/**/pkgconfig/galvani.pc"), recursive=True)
        self.assertEqual(len(pcs), 1, self.contents)
        with open(pcs[0]) as f:
            pc = f.read()
        # The .pc names the package's prefix, not the build's or the staging dir's.
        self.assertIn("prefix=%s\n" % PREFIX, pc)
        libdir = re.search(r"^libdir=(.*)$", pc, re.M).group(1).replace("${prefix}", PREFIX)
        self.assertEqual(os.path.join(self.root, libdir.lstrip("/")), os.path.dirname(libs[0]))

    # -- the unit --------------------------------------------------------------

    def test_unit(self):
        s = unit_settings(self.path(UNIT))
        self.assertEqual(s["KillMode"], ["process"])  # jobs outlive restarts (docs/service.md)
        self.assertEqual(s["Restart"], ["on-failure"])
        self.assertEqual(s["User"], ["galvani"])
        self.assertEqual(s["StateDirectory"], ["galvani"])
        self.assertTrue(any(c.startswith("token:") for c in s["LoadCredential"]))
        # Options that would break jobs or their re-adoption stay out.
        for bad in ("PrivateTmp", "DynamicUser", "RemoveIPC", "ProtectHome", "PrivateDevices",
                    "MemoryDenyWriteExecute", "ProtectClock", "RuntimeDirectory"):
            self.assertNotIn(bad, s)
        # The galvanid ExecStart runs is the packaged one.
        execs = re.findall(r"(/\S*/galvanid)\b", s["ExecStart"][0])
        self.assertEqual(execs, [PREFIX + "/bin/galvanid"])
        analyze = shutil.which("systemd-analyze")
        if analyze:
            # Offline: no running systemd needed.  --man=no: the man pages
            # are in the scratch root, not where man(1) looks.
            run(analyze, "verify", "--man=no", self.path(UNIT))

    def test_service_runs_a_job(self):
        """galvanid started as the unit starts it, the CLI against it."""
        work = os.path.join(self.tmp.name, "service")
        state, creds = os.path.join(work, "state"), os.path.join(work, "credentials")
        os.makedirs(state)
        os.makedirs(creds)
        for name, value in (("token", "full-" + "a" * 40), ("read-token", "read-" + "b" * 40)):
            with open(os.path.join(creds, name), "w") as f:
                f.write(value + "\n")
            os.chmod(os.path.join(creds, name), 0o400)
        s = unit_settings(self.path(UNIT))
        argv = [a.replace(PREFIX + "/bin/", self.bindir + "/") for a in
                systemd_command(s["ExecStart"][0], creds)]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "CREDENTIALS_DIRECTORY": creds}
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if name in os.environ:
                env[name] = os.environ[name]
        for assignment in s.get("Environment", []):
            for word in shlex.split(assignment):
                k, _, v = word.partition("=")
                env[k] = v
        # What a drop-in would change: a free port, a state dir of our own,
        # and an option through GALVANID_OPTS.
        env.update(GALVANI_LISTEN="127.0.0.1:0", GALVANI_DB=os.path.join(state, "galvani.db"),
                   GALVANID_OPTS="--max-running 3")
        proc = subprocess.Popen(argv, env=env, cwd=state, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines, port, ready = [], [], threading.Event()

        def pump():
            for line in proc.stderr:
                lines.append(line)
                m = re.search(r"galvanid\.listening addr=\S+:(\d+)", line)
                if m and not port:
                    port.append(int(m.group(1)))
                    ready.set()
            ready.set()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            self.assertTrue(ready.wait(DEADLINE) and port, "galvanid did not start:\n" + "".join(lines))
            url = "http://127.0.0.1:%d" % port[0]
            with urllib.request.urlopen(url + "/healthz", timeout=DEADLINE) as r:
                self.assertEqual(json.load(r)["max_running"], 3)  # GALVANID_OPTS reached galvanid
            self.check_cli(url, creds)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(DEADLINE)
            reader.join(DEADLINE)
            proc.stderr.close()
            end_leftover_jobs(os.path.join(state, "galvani.db.run"))
        self.assertEqual(rc, 0, "galvanid exited with %s:\n%s" % (rc, "".join(lines)[-4000:]))
        self.assertFalse(any("full-aaaa" in line or "read-bbbb" in line for line in lines), "a token was logged")

    def check_cli(self, url, creds):
        def cli(*args, token="token"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("GALVANI_")}
            env["GALVANI_URL"] = url
            if token:
                with open(os.path.join(creds, token)) as f:
                    env["GALVANI_TOKEN"] = f.read().strip()
            return subprocess.run([self.galvani] + list(args), env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=DEADLINE)

        # The token came from the credential: without it, refused.
        p = cli("ls", token=None)
        self.assertEqual(p.returncode, 1, p)
        # --follow prints the job's output, a verdict on stderr, and exits
        # with the job's status.
        p = cli("run", "--name", "from-the-deb", "--follow", "--", "sh", "-c", "echo hello from the deb")
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(p.stdout, "hello from the deb\n")
        m = re.search(r"job (\d+) from-the-deb: succeeded", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        job = m.group(1)
        p = cli("show", job, "--json")
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(json.loads(p.stdout)["status"], "succeeded")
        p = cli("logs", job)
        self.assertEqual((p.returncode, p.stdout), (0, "hello from the deb\n"), p)
        # The read-only credential: reads, no changes.
        p = cli("ls", token="read-token")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("from-the-deb", p.stdout)
        p = cli("run", "--", "true", token="read-token")
        self.assertEqual(p.returncode, 1, p)
        # The bash completion asks the daemon for job ids.
        with open(os.path.join(creds, "token")) as f:
            token = f.read().strip()
        offered = self.bash_complete(["galvani", "--server", url, "--token", token, "show", ""],
                                     path=self.bindir + os.pathsep + os.environ.get("PATH", ""))
        self.assertIn(job, offered)

    # -- man pages -------------------------------------------------------------

    def man(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def test_man_pages_render(self):
        for rel, name in (("usr/share/man/man1/galvani.1", "galvani"),
                          ("usr/share/man/man8/galvanid.8", "galvanid"),
                          ("usr/share/man/man7/galvani-protocol.7", "galvani-protocol")):
            # -ww: every warning; a page that renders with one is broken.
            p = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", "-ww", self.path(rel)],
                               capture_output=True, text=True, timeout=DEADLINE)
            self.assertEqual((p.returncode, p.stderr), (0, ""), rel)
            self.assertRegex(p.stdout, r"NAME\s+%s\s+-\s" % re.escape(name), rel)
            self.assertNotIn("@PROJECT_VERSION@", p.stdout, rel + ": the version was not filled in")

    def assert_documented(self, page, options, what):
        source = self.man(page)
        missing = sorted(o for o in options if o.replace("-", "\\-") not in source)
        self.assertEqual(missing, [], "%s: %s not documented" % (page, what))

    def test_galvani_1_covers_the_cli(self):
        main = self.help(self.galvani)
        commands = help_commands(main)
        self.assertTrue({"run", "ls", "show", "logs"} <= commands, commands)
        source = self.man("usr/share/man/man1/galvani.1")
        for cmd in sorted(commands):
            self.assertRegex(source, r"\n\.(B|BI|BR) \"?%s\b" % cmd, "galvani.1: command %s" % cmd)
            self.assert_documented("usr/share/man/man1/galvani.1", help_options(self.help(self.galvani, cmd)),
                                   "options of " + cmd)
        self.assert_documented("usr/share/man/man1/galvani.1", help_options(main), "global options")

    def test_galvanid_8_covers_the_daemon(self):
        options = help_options(self.help(self.galvanid))
        self.assertTrue({"--listen", "--db", "--token-file"} <= options, options)
        self.assert_documented("usr/share/man/man8/galvanid.8", options, "options")

    # -- completions -----------------------------------------------------------

    def bash_complete(self, words, path=None):
        """What the installed bash completion offers for the last word."""
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; '
                  'COMPREPLY=(); _galvani; printf "%s\\n" "${COMPREPLY[@]}"')
        env = {"PATH": path or os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp.name}
        out = run("bash", "--norc", "--noprofile", "-c", script, "bash",
                  self.path("usr/share/bash-completion/completions/galvani"), *words, env=env)
        return set(out.split())

    def test_completions_parse(self):
        run("bash", "-n", self.path("usr/share/bash-completion/completions/galvani"))
        if shutil.which("zsh"):
            run("zsh", "-n", self.path("usr/share/zsh/vendor-completions/_galvani"))

    def test_bash_completion_covers_the_cli(self):
        main = self.help(self.galvani)
        commands = help_commands(main)
        offered = self.bash_complete(["galvani", ""])
        self.assertEqual(commands - offered, set(), "commands of galvani --help the completion lacks")
        self.assertEqual(help_options(main) - self.bash_complete(["galvani", "-"]), set())
        for cmd in sorted(commands):
            # A command's options, and those of its sub-commands (rules add).
            subs = {w for w in self.bash_complete(["galvani", cmd, ""]) if not w.startswith("-")
                    and not w.isdigit()}
            offered = self.bash_complete(["galvani", cmd, "-"])
            for sub in subs:
                offered |= self.bash_complete(["galvani", cmd, sub, "-"])
            self.assertEqual(help_options(self.help(self.galvani, cmd)) - offered, set(),
                             "options of galvani %s --help the completion lacks" % cmd)
        self.assertEqual(self.bash_complete(["galvani", "run", "--pause-mode", ""]), {"stop", "cooperative"})
        self.assertEqual(self.bash_complete(["galvani", "ls", "--status", "running,pa"]), {"running,paused"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
