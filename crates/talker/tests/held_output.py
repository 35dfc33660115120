"""What the talker's memory costs for the output it holds (run by hand, not
by cargo): N clients log in and never read (4 KiB receive buffers), one
user says M lines of 200 bytes to their room, then the talker's `stats`
(its console is the FIFO /tmp/tk_in, its stdout /tmp/tk_out) gives
`output_held_bytes`, printed beside the RSS growth.

    mkfifo /tmp/tk_in; (sleep 600 > /tmp/tk_in &)
    talker --addr 127.0.0.1:4500 --data-dir DIR --max-per-address 2000 --flood-rate 0 \
        --argon2-memory 64 --write-limit 67108864 < /tmp/tk_in > /tmp/tk_out &
    python3 crates/talker/tests/held_output.py 4500 20 25000 $!
"""
import socket, sys, time
port, n, m, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def login(name, rcvbuf=None):
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port)); return s
base = rss()
crowd = []
for k in range(n):
    s = login(k, 4096); s.sendall(b"Held%d\r\npw-held%d\r\npw-held%d\r\n" % (k, k, k)); crowd.append(s)
a = login("A"); a.settimeout(30); buf = b""
def until(w):
    global buf
    while w not in buf:
        d = a.recv(65536); assert d; buf += d
    buf = buf[buf.index(w) + len(w):]
until(b"By what name"); a.sendall(b"Speaker\r\n"); until(b"password:"); a.sendall(b"pw-speaker\r\n"); until(b"again:"); a.sendall(b"pw-speaker\r\n"); until(b"Exits:")
time.sleep(2)
after_login = rss()
line = b"x" * 200
for i in range(m):
    a.sendall(b"say %d %s\r\n" % (i, line)); until(b"You say: %d " % i)
time.sleep(1)
open("/tmp/tk_in", "w").write("stats\n"); time.sleep(1)
held = [l for l in open("/tmp/tk_out") if "output_held_bytes" in l][-1].strip()
print(held)
print(f"rss base {base} KiB, after logins {after_login} KiB, after {m} says {rss()} KiB")
