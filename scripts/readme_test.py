#!/usr/bin/env python3
"""Runs the commands that README.md and crates/talker/README.md show, as a
user would paste them.

Every fenced block in those files carries an info string that says how it
is tested, and this script fails on a block that says nothing:

    ```sh run=NAME        the runner NAME below executes the block's lines,
                          taken from the file itself, and checks what a
                          user would see (each NAME once over all files)
    ```rust no-run WHY    not runnable as it stands (a fragment, or it needs
                          a terminal); WHY says what, and where the same
                          thing is tested

A runner fails when its block does not have the shape it knows (a line
added, removed or changed so that it no longer does what the runner
checks), so a README change that breaks a command breaks this test. The
first block of README.md is the front door (run=front-door).

Before any runner, and with every invocation, two checks that need no
build: every relative link in those files, CHANGELOG.md and docs/*.md
names a file that exists (and a `#heading` of a Markdown file names one of
its headings), and none of them says how the software was made (see
PROCESS_WORDS below).

    python3 scripts/readme_test.py [NAME...]   the checks, then the named
                                               runners (none named: all)
    python3 scripts/readme_test.py --checks    only the checks
    python3 scripts/readme_test.py --list      the runners, one a line
    python3 scripts/readme_test.py --help      this text

Commands run from the checkout's root, with `cargo` from PATH. Everything
is bounded: a generous deadline on each wait turns a hang into a failure.
The last line is "readme: N passed, N failed, N skipped".
"""

import json
import os
import pty
import queue
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The files whose blocks are run, README.md first.
RUN_FILES = [README, ROOT / "crates/talker/README.md"]
# The files whose links and wording are checked.
DOC_FILES = RUN_FILES + [ROOT / "CHANGELOG.md"] + sorted((ROOT / "docs").glob("*.md"))
# A release build of the workspace from nothing takes minutes on 2 cores.
BUILD_DEADLINE = 1200.0
DEADLINE = 30.0


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Block:
    def __init__(self, path, line, lang, words, text):
        self.path = path  # relative to the checkout
        self.line = line  # 1-based line of the opening fence
        self.lang = lang
        self.words = words
        self.text = text

    @property
    def where(self):
        return f"{self.path}:{self.line}"

    @property
    def run(self):
        for w in self.words:
            if w.startswith("run="):
                return w[4:]
        return None

    @property
    def no_run(self):
        return "no-run" in self.words

    def commands(self):
        """The block's commands: lines ending in `\\` joined to the next as
        the shell does, comments cut, blank lines skipped."""
        out, cont = [], ""
        for raw in self.text.splitlines():
            line = strip_comment(raw).rstrip()
            if line.endswith("\\"):
                cont += line[:-1].rstrip() + " "
                continue
            cmd = (cont + line.strip()).strip()
            cont = ""
            if cmd:
                out.append(cmd)
        if cont.strip():
            out.append(cont.strip())
        return out


def strip_comment(line):
    """The line without a trailing shell comment (a `#` outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def blocks(path, text):
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        info = m.group(1).split()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise Failure(f"{path}:{i + 1}: fence never closed")
        out.append(Block(path, i + 1, info[0] if info else "", info[1:], "\n".join(lines[start:j])))
        i = j + 1
    return out


# ------------------------------------------------------------ processes


class Proc:
    """A command started through bash in its own process group (as a shell
    starts a job), with its output read line by line on a thread."""

    def __init__(self, cmd, cwd=ROOT, stdin=subprocess.PIPE, env=None):
        self.cmd = cmd
        self.p = subprocess.Popen(
            ["bash", "-c", cmd],
            cwd=cwd,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern, deadline=DEADLINE):
        """Waits for an output line matching `pattern`; returns the match."""
        end = time.monotonic() + deadline
        while True:
            left = end - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0))
            except queue.Empty:
                raise Failure(f"`{self.cmd}`: no line matching {pattern!r} in {deadline:.0f} s; last output:\n"
                              + tail(self.seen))
            if line is None:
                raise Failure(f"`{self.cmd}`: ended (status {self.p.wait()}) before a line matching "
                              f"{pattern!r}; last output:\n" + tail(self.seen))
            self.seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def signal(self, sig):
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, deadline=DEADLINE):
        try:
            return self.p.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            raise Failure(f"`{self.cmd}`: still running after {deadline:.0f} s")

    def output(self):
        """Everything printed, once the process has ended (or, if something
        it left in the background still holds its output, what came within
        the deadline)."""
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.lines.get(timeout=max(end - time.monotonic(), 0))
            except queue.Empty:
                return self.seen
            if line is None:
                return self.seen
            self.seen.append(line)

    def kill(self):
        """Ends the process and whatever it started in its group."""
        self.signal(signal.SIGKILL)
        self.p.wait()


def tail(lines, n=15):
    return "\n".join("  | " + l for l in lines[-n:]) or "  (nothing)"


def run(cmd, cwd=ROOT, deadline=BUILD_DEADLINE, stdin=subprocess.DEVNULL):
    """Runs `cmd` to the end; fails unless it exits 0. Returns its output."""
    p = Proc(cmd, cwd=cwd, stdin=stdin)
    try:
        status = p.wait(deadline)
    finally:
        p.kill()  # and what it left running in the background
    out = p.output()
    check(status == 0, f"`{cmd}` exited with {status}; last output:\n" + tail(out))
    return out


def wait_port(port, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        except OSError:
            if time.monotonic() > end:
                raise Failure(f"nothing listening on 127.0.0.1:{port} after {deadline:.0f} s")
            time.sleep(0.05)  # polling for the port: a bounded retry, not synchronisation of a result


class Telnet:
    """A line-mode client over a raw socket: refuses every telnet option
    offered (RFC 1123), answers nothing else, and reads text lines."""

    IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(DEADLINE)
        self.text = ""
        self.pending = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def _feed(self, data):
        data = self.pending + data
        self.pending = b""
        out = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b != self.IAC:
                out.append(b)
                i += 1
                continue
            if i + 1 >= len(data):
                self.pending = data[i:]
                break
            cmd = data[i + 1]
            if cmd in (self.DO, self.DONT, self.WILL, self.WONT):
                if i + 2 >= len(data):
                    self.pending = data[i:]
                    break
                opt = data[i + 2]
                if cmd == self.DO:
                    self.sock.sendall(bytes([self.IAC, self.WONT, opt]))
                elif cmd == self.WILL:
                    self.sock.sendall(bytes([self.IAC, self.DONT, opt]))
                i += 3
            elif cmd == self.SB:
                end = data.find(bytes([self.IAC, self.SE]), i + 2)
                if end < 0:
                    self.pending = data[i:]
                    break
                i = end + 2
            else:
                if cmd == self.IAC:
                    out.append(self.IAC)
                i += 2
        self.text += out.decode("utf-8", "replace")

    def expect(self, *patterns):
        """Waits until one of `patterns` appears; returns its index and
        consumes the text up to it."""
        end = time.monotonic() + DEADLINE
        while True:
            for n, pat in enumerate(patterns):
                m = re.search(pat, self.text)
                if m:
                    self.text = self.text[m.end():]
                    return n
            if time.monotonic() > end:
                raise Failure(f"talker: none of {patterns!r} in {DEADLINE:.0f} s; got {self.text[-300:]!r}")
            data = self.sock.recv(4096)
            if not data:
                raise Failure(f"talker closed the connection before {patterns!r}; got {self.text[-300:]!r}")
            self._feed(data)


PASSWORD_PROMPT = r"(?i)(password|again):"
# Logged in: "Welcome, NAME! ..." or "Welcome back, NAME! ...". Not the new
# name's "A new name: welcome, NAME!", which comes before the password
# prompts (matching it raced them whenever the two lines arrived apart).
LOGGED_IN = r"Welcome( back)?, [^!\r\n]+!"


def login_and_say(conn, name, what):
    """Logs `name` in (setting a password if the talker asks for one) and
    says `what`; checks the talker repeats it."""
    t = Telnet(conn)
    t.expect(r"(?i)by what name")
    t.send(name)
    # A password prompt ("Choose a password:", "Type it again:") until in.
    while t.expect(PASSWORD_PROMPT, LOGGED_IN) == 0:
        t.send("readme-test-password")
    t.send(f"say {what}")
    t.expect(re.escape(f"You say: {what}"))
    t.send("quit")
    conn.close()


def main_job(cmd):
    """The README's main job: starts, prints its address, serves a telnet
    user, and ends with exit 0 on Ctrl-C (SIGINT to its process group)."""
    data = ROOT / "talker-data"
    saved = None
    if data.exists():  # a developer's own state: keep it out of the test's way
        saved = data.with_name(f"talker-data.readme-test-{os.getpid()}")
        data.rename(saved)
    p = Proc(cmd)
    try:
        m = p.expect(r"listening on (\S+):(\d+)", BUILD_DEADLINE)
        check(m.group(1) == "127.0.0.1", f"main job listens on {m.group(1)}, not 127.0.0.1")
        port = int(m.group(2))
        return p, port, (data, saved)
    except BaseException:
        p.kill()
        restore(data, saved)
        raise


def restore(data, saved):
    if saved is not None:
        subprocess.run(["rm", "-rf", str(data)])
        saved.rename(data)


def stop_main_job(p, state):
    try:
        p.signal(signal.SIGINT)
        status = p.wait()
        check(status == 0, f"`{p.cmd}` exited with {status} on SIGINT; last output:\n" + tail(p.output()))
    finally:
        p.kill()
        restore(*state)


# ------------------------------------------------------------- runners

RUNNERS = {}


def runner(name):
    def reg(f):
        RUNNERS[name] = f
        return f
    return reg


def shape(block, n, what):
    cmds = block.commands()
    check(len(cmds) == n, f"{block.where}: expected {n} command lines ({what}), found {len(cmds)}: {cmds}")
    return cmds


@runner("front-door")
def front_door(block, _all):
    """Line 1 the main job, line 2 the whole suite (exactly what .ci/run
    runs), line 3 its quick form (a step of that same script)."""
    main, full, quick = shape(block, 3, "main job, test suite, quick tests")
    ci = (ROOT / ".ci/run").read_text()
    ci_cmds = [strip_comment(l).strip() for l in ci.splitlines()]
    ci_cmds = [re.sub(r"^exec\s+", "", c) for c in ci_cmds if c]
    check(full in ci_cmds, f"the README's test command `{full}` is not what .ci/run runs ({ci_cmds[-1]!r})")
    check(quick.startswith(full + " "), f"the quick command `{quick}` is not `{full} STEP`")
    steps = subprocess.run(["bash", "-c", full + " --list"], cwd=ROOT, capture_output=True, text=True)
    check(steps.returncode == 0, f"`{full} --list` failed: {steps.stderr}")
    for s in quick[len(full):].split():
        check(s in steps.stdout.split(), f"`{quick}`: no step `{s}` in {full}")

    p, port, state = main_job(main)
    try:
        check(port == 4000, f"the main job listens on port {port}, the README says 4000")
        login_and_say(wait_port(port), "Readme", "hello from the README")
    finally:
        stop_main_job(p, state)


@runner("talker-telnet")
def talker_telnet(block, _all):
    """The talker, and a real telnet client in a pseudo-terminal: log in,
    say something, quit."""
    server, client = shape(block, 2, "the talker, a telnet client")
    p, port, state = main_job(server)
    try:
        argv = shlex.split(client)
        check(argv[0] == "telnet" and argv[1:] == ["127.0.0.1", str(port)],
              f"`{client}` does not connect to the talker's 127.0.0.1:{port}")
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp(argv[0], argv)
        try:
            screen = Screen(fd)
            screen.expect(r"(?i)by what name")
            screen.send("Telnetuser")
            while screen.expect(PASSWORD_PROMPT, LOGGED_IN) == 0:
                screen.send("readme-test-password")
            screen.send("say hello over telnet")
            screen.expect(r"You say: hello over telnet")
            screen.send("quit")
            screen.expect(r"(?i)connection closed")
            _, status = os.waitpid(pid, 0)
            pid = None
        finally:
            if pid:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
    finally:
        stop_main_job(p, state)


class Screen:
    """What a program in a pseudo-terminal shows, and keys typed into it."""

    def __init__(self, fd):
        self.fd = fd
        self.text = ""

    def send(self, line):
        os.write(self.fd, line.encode() + b"\r")

    def expect(self, *patterns):
        end = time.monotonic() + DEADLINE
        while True:
            for n, pat in enumerate(patterns):
                m = re.search(pat, self.text)
                if m:
                    self.text = self.text[m.end():]
                    return n
            left = end - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise Failure(f"telnet: none of {patterns!r} on screen in {DEADLINE:.0f} s; "
                              f"screen: {self.text[-300:]!r}")
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                raise Failure(f"telnet ended before {patterns!r}; screen: {self.text[-300:]!r}")
            self.text += data.decode("utf-8", "replace")


@runner("mcp-oneliner")
def mcp_oneliner(block, _all):
    """The README's one-liner: its JSON answers parse, `stats` has numbers."""
    (cmd,) = shape(block, 1, "the MCP one-liner")
    out = run(cmd)
    answers = {}
    for line in out:
        if not line.startswith("{"):
            continue  # cargo's own lines, the talker's stderr
        msg = json.loads(line)
        check(msg.get("jsonrpc") == "2.0", f"not JSON-RPC 2.0: {line}")
        if "id" in msg:
            answers[msg["id"]] = msg
    check_mcp_answers(answers, cmd)


def check_mcp_answers(answers, what):
    check(1 in answers and "result" in answers[1], f"`{what}`: no answer to initialize: {answers}")
    check(answers[1]["result"].get("protocolVersion"), f"`{what}`: initialize without a protocolVersion")
    check(2 in answers and "result" in answers[2], f"`{what}`: no answer to tools/call stats: {answers}")
    result = answers[2]["result"]
    text = " ".join(c.get("text", "") for c in result.get("content", []))
    numbers = re.findall(r"\d+", text + json.dumps(result.get("structuredContent", {})))
    check(numbers and not result.get("isError"), f"`{what}`: stats has no numbers: {result}")


@runner("mcp-config")
def mcp_config(block, _all):
    """The MCP client configuration: valid JSON whose command and args start
    the talker, which answers an MCP client on stdio."""
    cfg = json.loads(block.text)
    server = cfg["mcpServers"]["talker"]
    command = server["command"].replace("/path/to/uniloop", str(ROOT))
    check(command == str(ROOT / "target/release/talker"),
          f"the configuration's command {server['command']!r} is not the release build of the talker")
    run("cargo build --release -p talker")
    args = list(server["args"])
    check("--mcp" in args, "the configuration does not pass --mcp")
    with tempfile.TemporaryDirectory() as tmp:
        i = args.index("--data-dir")  # the user's data directory, here a scratch one
        args[i + 1] = tmp
        # The configuration's port would clash with a talker of the user's
        # own: the same arguments, on any free port.
        i = args.index("--addr")
        args[i + 1] = re.sub(r":\d+$", ":0", args[i + 1])
        requests = [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "readme", "version": "0"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "stats"}},
        ]
        p = subprocess.run([command] + args, input="".join(json.dumps(r) + "\n" for r in requests),
                           capture_output=True, text=True, timeout=DEADLINE)
        check(p.returncode == 0, f"the configured talker exited {p.returncode}: {p.stderr[-500:]}")
        answers = {}
        for line in p.stdout.splitlines():
            msg = json.loads(line)
            if "id" in msg:
                answers[msg["id"]] = msg
        check_mcp_answers(answers, "the MCP configuration")


@runner("load")
def load(block, _all):
    """The load pair: the talker in the background, then talker-load
    against it. Run as written but shorter and smaller: 2 s, 50 clients."""
    server, client = shape(block, 2, "the talker in the background, talker-load")
    check(server.endswith("&"), f"`{server}` does not start the talker in the background")
    short = re.sub(r"--duration \d+", "--duration 2", client)
    short = re.sub(r"--clients \d+", "--clients 50", short)
    check(short != client and "--duration 2" in short and "--clients 50" in short,
          f"`{client}`: no --duration and --clients to shorten")
    # The block as a script; then the talker it started gets SIGINT.
    script = f"set -e\n{server}\nserver=$!\n{short}\nkill -INT $server\nwait $server\n"
    out = run(script, deadline=BUILD_DEADLINE)
    text = "\n".join(out)
    m = re.search(r"(?i)delivered\D*([\d,]+)", text)
    check(m, "talker-load printed no delivery count:\n" + tail(out))


@runner("echo")
def echo(block, _all):
    """The echo example: line 1 serves on 127.0.0.1:7878 until Ctrl-C,
    line 2 stops by itself after --seconds."""
    forever, timed = shape(block, 2, "the echo example, and with --seconds")
    p = Proc(forever)
    try:
        m = p.expect(r"listening on 127\.0\.0\.1:7878", BUILD_DEADLINE)
        s = wait_port(7878)
        s.sendall(b"hello, echo\n")
        got = b""
        while b"\n" not in got:
            data = s.recv(100)
            check(data, "the echo example closed the connection")
            got += data
        check(got == b"hello, echo\n", f"the echo example sent back {got!r}")
        s.close()
        p.signal(signal.SIGINT)
        status = p.wait()
        check(status == 0, f"`{forever}` exited with {status} on SIGINT")
    finally:
        p.kill()
    check("--seconds" in timed, f"`{timed}` has no --seconds")
    run(timed, deadline=BUILD_DEADLINE)


@runner("c-build")
def c_build(block, blocks_by_name):
    """The C install and build lines with the README's C program: installed
    to a scratch prefix (the user's own, `$HOME/.local`, in the README),
    built as shown (shared and static), and both programs run."""
    cmds = shape(block, 4, "install, PKG_CONFIG_PATH, link shared, link static")
    app = blocks_by_name.get("c-app")
    check(app is not None, "no ```c run=c-app block for the C build lines")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "prefix"
        work = Path(tmp) / "work"
        work.mkdir()
        # The checkout as the user sees it, plus their app.c.
        for name in ("Cargo.toml", "Cargo.lock", "crates", "scripts", "target"):
            target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) if name == "target" else ROOT / name
            os.symlink(target, work / name)
        (work / "app.c").write_text(app.text + "\n")
        script = "set -e\n" + "\n".join(c.replace("$HOME/.local", str(prefix)) for c in cmds) + "\n"
        check(str(prefix) in script, "the install line does not use $HOME/.local")
        run(script, cwd=work)
        outputs = [m.group(1) for c in cmds for m in [re.search(r"-o\s+(\S+)", c)] if m]
        check(len(outputs) == 2, f"expected two programs built, found {outputs}")
        for exe in outputs:
            # Neither needs LD_LIBRARY_PATH: the shared one has its rpath.
            out = run(f"./{exe}", cwd=work, deadline=DEADLINE)
            check(any(re.match(r"key 1 data 42$", l) for l in out), f"{exe}: no completion line in {out}")
            check(any(re.match(r"key 2 data \d+ \(timer\)$", l) for l in out), f"{exe}: no timer line in {out}")
        ldd = run(f"ldd ./{outputs[0]}", cwd=work, deadline=DEADLINE)
        check(any("libuniloop.so.0 => " + str(prefix) in l for l in ldd),
              f"{outputs[0]} does not load the installed libuniloop.so.0: {ldd}")


@runner("c-app")
def c_app(block, _all):
    """Compiled and run by c-build."""


@runner("bench")
def bench(block, _all):
    """The bench lines: the --quick and --callgrind lines are the ones
    scripts/test.sh runs in its bench step; a line that names cases runs
    them in the quick form; the plain full run is the --quick line without
    --quick."""
    cmds = block.commands()
    suite = (ROOT / "scripts/test.sh").read_text()
    base = "cargo run --release -p uniloop-bench"
    check(base in cmds, f"{block.where}: no full run `{base}`")
    for cmd in cmds:
        check(cmd.startswith(base), f"`{cmd}` does not run the bench")
        args = cmd[len(base):].split()
        if cmd == base:
            check(f"{base} -- --quick" in cmds, "the full run has no quick form in the block")
        elif "--quick" in args or "--callgrind" in args:
            check(cmd in suite, f"`{cmd}` is not what scripts/test.sh runs")
        else:
            check(args[0] == "--", f"`{cmd}`: arguments without --")
            with tempfile.TemporaryDirectory() as tmp:
                run(f"{cmd} --quick --reps 1 --out {tmp}")


# --------------------------------------------------- links and wording


def slug(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def outside_code(text):
    """The file's lines outside fenced blocks, numbered from 1."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def anchors(path):
    """The anchors of a Markdown file's headings."""
    out, seen = set(), {}
    for _, line in outside_code(path.read_text()):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            k = seen.get(base, 0)
            seen[base] = k + 1
            out.add(base if k == 0 else f"{base}-{k}")
    return out


LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)")


def link_problems(path):
    """Relative links of `path` that name no file, or no heading of it."""
    rel = path.relative_to(ROOT)
    out = []
    for n, line in outside_code(path.read_text()):
        # Code spans blanked: `[a](b)` in code is no link; a link's text
        # in code ([`x`](x)) keeps its target.
        for m in LINK.finditer(re.sub(r"`[^`]*`", "``", line)):
            target = m.group(1) or m.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: ...
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                out.append(f"{rel}:{n}: link to {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                out.append(f"{rel}:{n}: link to {target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    return out


# How the software was made is not part of its documentation.
PROCESS_WORDS = re.compile(
    r"\bissues?\s*#?\d+|\bthe issue's\b|\bhelpers?\b|\bthis session\b|\bsession's changes\b",
    re.IGNORECASE)


def wording_problems(path):
    rel = path.relative_to(ROOT)
    return [f"{rel}:{n}: process word {m.group(0)!r}"
            for n, line in enumerate(path.read_text().splitlines(), 1)
            for m in [PROCESS_WORDS.search(line)] if m]


# ---------------------------------------------------------------- main


def main(argv):
    if "--help" in argv or "-h" in argv:
        print(__doc__.strip())
        return 0
    if "--list" in argv:
        for name, f in RUNNERS.items():
            print(f"{name}: {(f.__doc__ or '').split(chr(10))[0]}")
        return 0
    options = [a for a in argv if a.startswith("-")]
    if [o for o in options if o != "--checks"]:
        print(f"readme_test: unknown option {options}; see --help", file=sys.stderr)
        return 2
    only = [a for a in argv if not a.startswith("-")]
    unknown = [a for a in only if a not in RUNNERS]
    if unknown:
        print(f"readme_test: no runner {unknown}; see --list", file=sys.stderr)
        return 2
    problems = []
    all_blocks = []
    for path in RUN_FILES:
        rel = path.relative_to(ROOT)
        found = blocks(rel, path.read_text())
        if path == README and (not found or found[0].run != "front-door"):
            problems.append(f"{rel}: the first block is not the front door (```sh run=front-door)")
        all_blocks += found
    by_name = {}
    for b in all_blocks:
        name = b.run
        if name is None and not b.no_run:
            problems.append(f"{b.where}: ```{b.lang} block without run=NAME or no-run")
        elif name is not None and name not in RUNNERS:
            problems.append(f"{b.where}: run={name}: no such runner (see --list)")
        elif name is not None and name in by_name:
            problems.append(f"{b.where}: run={name} used twice (first at {by_name[name].where})")
        elif name is not None:
            by_name[name] = b
        elif b.no_run and len(b.words) < 2:
            problems.append(f"{b.where}: no-run without a reason")
    for path in DOC_FILES:
        problems += link_problems(path) + wording_problems(path)
    passed = failed = 0
    for p in problems:
        print(f"FAIL {p}")
        failed += 1
    for name, b in by_name.items():
        if "--checks" in options or (only and name not in only):
            continue
        started = time.monotonic()
        try:
            RUNNERS[name](b, by_name)
        except Exception as e:  # one runner's failure, whatever it is, is reported and the rest run
            kind = "" if isinstance(e, Failure) else f"{type(e).__name__}: "
            print(f"FAIL {name} ({b.where}): {kind}{e}")
            failed += 1
        else:
            print(f"ok   {name} ({b.where}, {time.monotonic() - started:.1f} s)")
            passed += 1
    skipped = sum(1 for b in all_blocks if b.no_run)
    print(f"readme: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
