#!/usr/bin/env python3
# Memory and a small push's wait with many HTTP pushes stalled mid-body
# (issue 12, point 3). Usage:
#   python3 scripts/stalled-bodies.py ./push-gateway 100 [daemon flags...]
# Each of N connections announces a 1 MiB body, sends 900 KiB of it and
# stalls; then one small push is timed (20 s at most), and the daemon's
# VmRSS and VmHWM are printed.
import socket, subprocess, time, os, sys, tempfile
binary, n = sys.argv[1], int(sys.argv[2])
d = tempfile.mkdtemp(prefix="pgb")
sock = d + "/p.sock"
p = subprocess.Popen([binary, "--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0"] + sys.argv[3:], stderr=subprocess.DEVNULL)
for _ in range(100):
    if os.path.exists(sock): break
    time.sleep(0.05)
def status(k):
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith(k): return int(l.split()[1])
base = status("VmRSS:")
conns = []
body = b"# " + b"x" * (900 << 10)
for i in range(n):
    c = socket.socket(socket.AF_UNIX); c.connect(sock)
    c.sendall(b"PUT /metrics/job/big%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (i, 1 << 20))
    c.setblocking(False)
    try: c.send(body)
    except BlockingIOError: pass
    conns.append(c)
time.sleep(3)
# a normal push next to them
c = socket.socket(socket.AF_UNIX); c.settimeout(20); c.connect(sock)
t = time.time()
c.sendall(b"PUT /metrics/job/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nok 1\n")
try: resp = c.recv(100).split(b"\r\n")[0]
except TimeoutError: resp = b"no answer"
took = time.time() - t
print(f"{n} stalled 1 MiB bodies (900 KiB sent each): VmRSS {base} kB before, {status('VmRSS:')} kB with them, VmHWM {status('VmHWM:')} kB; a small push next to them: {resp.decode()} in {took*1000:.0f} ms")
p.terminate(); p.wait()
