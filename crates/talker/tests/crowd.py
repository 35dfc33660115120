"""A crowd against a running talker, measured (run by hand, not by cargo):
N clients log in at once (name and password sent without reading, 4 KiB
receive buffers) and never read, stay 15 s, then all hang up at once; a
logged-in user's `say` is timed every 10 ms all along. Prints the echo
p50/p99/max, the worst samples with their times, and the server's RSS.

    talker --addr 127.0.0.1:4500 --max-clients 2000 --max-per-address 2000 \
        --flood-rate 0 --argon2-memory 64 &
    python3 crates/talker/tests/crowd.py 4500 1000 $!
"""
import socket, sys, time, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
pid = sys.argv[3]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
a = socket.create_connection(("127.0.0.1", port)); a.settimeout(30); buf = b""
def until(w):
    global buf
    while w not in buf:
        d = a.recv(65536); assert d; buf += d
    buf = buf[buf.index(w) + len(w):]
until(b"By what name"); a.sendall(b"Alice\r\n"); until(b"password:"); a.sendall(b"pw-alice\r\n"); until(b"again:"); a.sendall(b"pw-alice\r\n"); until(b"Exits:")
lat = []; stop = False; i = 0
def echo():
    global i
    while not stop:
        t = time.perf_counter(); a.sendall(b"say e%d\r\n" % i); until(b"You say: e%d" % i)
        lat.append(((time.perf_counter() - t) * 1000, time.time())); i += 1; time.sleep(0.01)
th = threading.Thread(target=echo); th.start()
crowd = []
t0 = time.time()
for k in range(n):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); s.connect(("127.0.0.1", port))
    s.sendall(b"Crowd%d\r\npw-crowd%d\r\npw-crowd%d\r\n" % (k, k, k)); crowd.append(s)
print("crowd of %d connected in %.1fs; rss %d KiB" % (n, time.time() - t0, rss()))
time.sleep(15)
print("after 15 s: rss %d KiB" % rss())
t_close = time.time()
for s in crowd: s.close()
time.sleep(5)
stop = True; th.join()
worst = sorted(lat, reverse=True)[:5]
print("worst:", ", ".join("%.0f ms at %+.1fs" % (l, at - t0) for l, at in worst), "(hang-up at %+.1fs)" % (t_close - t0))
lat = sorted(l for l, _ in lat)
print("echo samples %d: p50 %.2f ms, p99 %.2f ms, max %.2f ms; rss at end %d KiB" % (len(lat), lat[len(lat)//2], lat[int(len(lat)*0.99)], lat[-1], rss()))
