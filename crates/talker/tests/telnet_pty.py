"""inetutils telnet in a pseudo-terminal against a running talker.

Usage: telnet_pty.py HOST PORT NAME. Logs in as NAME, then three times:
Ctrl-C (telnet sends IAC IP, IAC DO TIMING-MARK and discards output until
the answer), then a say whose echo must arrive. Exits non-zero on failure.
"""
import sys

import pexpect

host, port, name = sys.argv[1], sys.argv[2], sys.argv[3]
t = pexpect.spawn(
    "telnet",
    [host, port],
    encoding="utf-8",
    timeout=20,
    env={"TERM": "xterm", "PATH": "/usr/bin:/bin:/usr/local/bin"},
)
t.logfile_read = sys.stdout
t.expect("By what name")
t.sendline(name)
# The password, typed twice with the client's echo off (WILL ECHO).
t.expect("Choose a password:")
t.sendline("pw-" + name.lower())
t.expect("Type it again:")
t.sendline("pw-" + name.lower())
t.expect("Welcome, " + name)
for i in range(3):
    t.sendcontrol("c")
    t.sendline("say after interrupt %d" % i)
    t.expect("You say: after interrupt %d" % i)
t.sendline("quit")
t.expect("Goodbye")
t.expect(pexpect.EOF)
print("\ntelnet_pty: all checks passed")
