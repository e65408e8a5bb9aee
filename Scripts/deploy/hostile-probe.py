#!/usr/bin/env python3
"""Bounded hostile-traffic probe of a running `ladon serve` on loopback (opt-in; never part of CI).

    python3 Scripts/deploy/hostile-probe.py --port 8080 --packet GOOD.ldnp --expected GOOD.json [--pid SERVER_PID]

GOOD.ldnp is a packet from `ladon encode` for the served model, GOOD.json its in-process answer
(`ladon decode --json`). Each case below is one attack from the edge-service issue; each must end with a 4xx/503
or with the connection closed within its timeout, and afterwards a valid request must still get the right answer.
With --pid the server's peak RSS (VmHWM) is read at the end and must stay under --max-rss-mb (default 1536).
Every loop is bounded in count and time; traffic goes to 127.0.0.1 only.
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time
import zlib

HOST = '127.0.0.1'


def parse_packet(data):
    fields = list(struct.unpack('<10I', data[24:64]))
    return data[:24], fields, data[64:64 + fields[9]]


def build_packet(head, fields, payload):
    body = head + struct.pack('<10I', *fields) + payload
    return body + struct.pack('<I', zlib.crc32(body) & 0xFFFFFFFF)


def request(port, method, path, body=b'', ctype='application/vnd.ladon.packet', timeout=120, headers=None):
    """One HTTP/1.1 request on a fresh connection; returns (status, headers, body, seconds)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    start = time.monotonic()
    extra = ''.join(f'{k}: {v}\r\n' for k, v in (headers or {}).items())
    s.sendall(f'{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n'
              f'Connection: close\r\n{extra}\r\n'.encode() + body)
    data = b''
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    s.close()
    elapsed = time.monotonic() - start
    if not data:
        return None, {}, b'', elapsed
    head, _, rest = data.partition(b'\r\n\r\n')
    lines = head.decode('latin1').split('\r\n')
    status = int(lines[0].split()[1])
    hdrs = {l.split(':', 1)[0].lower(): l.split(':', 1)[1].strip() for l in lines[1:] if ':' in l}
    return status, hdrs, rest, elapsed


def same_answer(body, expected):
    got = json.loads(body)
    for k in ('file', 'timings'):
        got.pop(k, None)
        expected = {kk: vv for kk, vv in expected.items() if kk != k}
    return got == expected


class Probe:
    def __init__(self, args):
        self.args = args
        self.failures = []
        with open(args.packet, 'rb') as f:
            self.packet = f.read()
        with open(args.expected) as f:
            self.expected = json.load(f)

    def check(self, name, ok, detail):
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
        if not ok:
            self.failures.append(name)

    def forged(self, name, change):
        head, fields, payload = parse_packet(self.packet)
        change(fields)
        status, _, body, t = request(self.args.port, 'POST', '/v1/infer', build_packet(head, fields, payload))
        code = json.loads(body)['error']['code'] if body else None
        self.check(name, status == 400, f'{status} {code} in {t * 1000:.0f} ms')

    def valid_still_right(self, when):
        status, _, body, t = request(self.args.port, 'POST', '/v1/infer', self.packet)
        self.check(f'valid request {when}', status == 200 and same_answer(body, self.expected),
                   f'{status} in {t * 1000:.0f} ms')

    def run(self):
        a = self.args
        self.valid_still_right('before')
        # 1. A valid packet whose original size says 65536 x 65536 (CRC recomputed).
        self.forged('original 65536x65536', lambda f: f.__setitem__(slice(0, 2), [65536, 65536]))
        # 2. Padded 4 x maxSize with a matching latent (the 22x-cost request).
        def padded(f):
            f[4], f[5] = 1664, 1664
            f[7], f[8] = 1664 // 4 - 1, 1664 // 4 - 1
        self.forged('padded 1664x1664', padded)
        # 3. Resized size not what the preprocessing gives.
        self.forged('resized off by one', lambda f: f.__setitem__(2, f[2] - 1))
        # 4. A 64 MiB frame announced: refused by Content-Length without reading it.
        s = socket.create_connection((HOST, a.port), timeout=10)
        s.sendall(b'POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.ladon.packet\r\n'
                  b'Content-Length: 67108864\r\n\r\nLDNP')
        t0 = time.monotonic()
        try:
            reply = s.recv(4096)
        except socket.timeout:
            reply = b''
        s.close()
        self.check('64 MiB body announced', reply.startswith(b'HTTP/1.1 413'),
                   f'{reply[:12]!r} in {(time.monotonic() - t0) * 1000:.0f} ms')
        # 5. Stalled connections: 200 silent ones and 20 with a partial body; all closed within the timeouts.
        socks = []
        for i in range(200):
            c = socket.create_connection((HOST, a.port), timeout=a.idle_timeout + 10)
            if i < 20:
                c.sendall(b'POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.ladon.packet\r\n'
                          b'Content-Length: 100000\r\n\r\nLDNP')
            socks.append(c)
        t0 = time.monotonic()
        self.valid_still_right('with 200 stalled connections open')
        closed = 0
        for c in socks:
            try:
                closed += c.recv(1) == b''
            except (socket.timeout, ConnectionResetError):
                closed += 1
            c.close()
        self.check('stalled connections closed', closed == len(socks),
                   f'{closed}/{len(socks)} closed after {time.monotonic() - t0:.1f} s '
                   f'(idle timeout {a.idle_timeout} s, read timeout {a.read_timeout} s)')
        # 6. Many concurrent clients: some 503 at once, no wrong answer, no long waits for the refused.
        results = []

        def client():
            results.append(request(a.port, 'POST', '/v1/infer', self.packet, timeout=a.client_timeout))

        threads = [threading.Thread(target=client) for _ in range(a.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(a.client_timeout + 5)
        ok = [r for r in results if r[0] == 200]
        busy = [r for r in results if r[0] == 503]
        wrong = [r for r in ok if not same_answer(r[2], self.expected)]
        other = [r for r in results if r[0] not in (200, 503)]
        worst_busy = max((r[3] for r in busy), default=0)
        self.check(f'{a.clients} concurrent clients',
                   len(ok) + len(busy) == a.clients and not wrong and not other and len(busy) > 0 and worst_busy < 1.0,
                   f'{len(ok)} x 200, {len(busy)} x 503 (slowest 503 after {worst_busy * 1000:.0f} ms, '
                   f'Retry-After {busy[0][1].get("retry-after") if busy else "-"}), {len(wrong)} wrong, '
                   f'{len(other)} other, {time.monotonic() - t0:.1f} s in all')
        # 7. Clients that reset while queued: their work is dropped.
        before = self.metric('ladon_refused_total{reason="client_gone"}')
        hold = threading.Thread(target=lambda: request(a.port, 'POST', '/v1/infer', self.packet))
        hold.start()
        time.sleep(0.2)
        leavers = []
        for _ in range(4):
            c = socket.create_connection((HOST, a.port))
            c.sendall(f'POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.ladon.packet\r\n'
                      f'Content-Length: {len(self.packet)}\r\n\r\n'.encode() + self.packet)
            leavers.append(c)
        time.sleep(0.2)
        for c in leavers:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            c.close()
        hold.join(120)
        time.sleep(0.5)
        after = self.metric('ladon_refused_total{reason="client_gone"}')
        self.check('queued work of clients that reset is dropped', after - before == 4, f'{after - before} of 4 dropped')
        # 8. Half-close after sending (nc -N) still gets the answer.
        c = socket.create_connection((HOST, a.port), timeout=120)
        c.sendall(f'POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.ladon.packet\r\n'
                  f'Content-Length: {len(self.packet)}\r\n\r\n'.encode() + self.packet)
        c.shutdown(socket.SHUT_WR)
        reply = b''
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            reply += chunk
        c.close()
        self.check('half-closed client gets its answer', reply.startswith(b'HTTP/1.1 200'), f'{reply[:15]!r}')
        # 9. Garbage HTTP and a wrong model id.
        status, _, _, _ = request(a.port, 'POST', '/v1/infer', b'\x00' * 1000)
        self.check('garbage body', status == 400, f'{status}')
        head, fields, payload = parse_packet(self.packet)
        foreign = b'LDNP\x01\x00\x00\x00' + b'\xab' * 16
        status, _, body, _ = request(a.port, 'POST', '/v1/infer', build_packet(foreign, fields, payload))
        self.check('packet from another model', status in (409, 200) if head[8:24] == b'\x00' * 16 else status == 409,
                   f'{status} {body[:120]!r}')
        self.valid_still_right('after everything')
        if a.pid:
            with open(f'/proc/{a.pid}/status') as f:
                hwm = [l for l in f if l.startswith('VmHWM')][0].split()[1]
            mb = int(hwm) / 1024
            self.check('server peak RSS', mb < a.max_rss_mb, f'{mb:.0f} MB (limit {a.max_rss_mb} MB)')
        print(f"\n{'PROBE PASSED' if not self.failures else 'PROBE FAILED: ' + ', '.join(self.failures)}")
        return 0 if not self.failures else 1

    def metric(self, name):
        _, _, body, _ = request(self.args.port, 'GET', '/metrics')
        for line in body.decode().splitlines():
            if line.startswith(name + ' '):
                return float(line.split()[-1])
        return 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--packet', required=True)
    p.add_argument('--expected', required=True)
    p.add_argument('--pid', type=int)
    p.add_argument('--clients', type=int, default=50)
    p.add_argument('--client-timeout', type=float, default=120)
    p.add_argument('--idle-timeout', type=float, default=60)
    p.add_argument('--read-timeout', type=float, default=15)
    p.add_argument('--max-rss-mb', type=float, default=1536)
    sys.exit(Probe(p.parse_args()).run())


if __name__ == '__main__':
    main()
