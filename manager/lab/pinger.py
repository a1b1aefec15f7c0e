"""ICMP echo at a fixed interval, for watching a guest through a migration from inside a lab namespace.

The machine has no `ping` (iputils is not installed, and the lab needs none otherwise), so the
lab carries this one: run it in a namespace with `ip netns exec NS python -m manager.lab.pinger
ADDRESS [--interval 0.01] [--count N]`. It prints one line per reply (`reply seq=N`) and, when
stopped (SIGINT/SIGTERM, or after --count), one summary line:
`sent S received R lost L longest_gap_ms G` — G is the longest run of unanswered requests between
two answered ones times the interval: the downtime a client of the guest saw.

`gap_ms` is the pure part; the socket and the clock are the edge.
"""
from __future__ import annotations

import argparse
import itertools
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterable

ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    payload = struct.pack("!d", time.monotonic()) + b"virtfleet-pinger"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq & 0xFFFF)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq & 0xFFFF) + payload


def reply_seq(packet: bytes, ident: int) -> int | None:
    """The sequence number of our echo reply in a raw IPv4 packet, else None."""
    if len(packet) < 20:
        return None
    icmp = packet[(packet[0] & 0x0F) * 4:]
    if len(icmp) < 8:
        return None
    kind, _, _, got_ident, seq = struct.unpack("!BBHHH", icmp[:8])
    return seq if kind == ECHO_REPLY and got_ident == ident else None


def gap_ms(answered: Iterable[int], interval_s: float) -> int:
    """The longest run of missing sequence numbers between answered ones, in milliseconds."""
    seqs = sorted(set(answered))
    gap = max((b - a - 1 for a, b in itertools.pairwise(seqs)), default=0)
    return round(gap * interval_s * 1000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m manager.lab.pinger", description=__doc__.split("\n")[0])
    p.add_argument("address")
    p.add_argument("--interval", type=float, default=0.01, help="seconds between requests (default 0.01)")
    p.add_argument("--count", type=int, default=0, help="stop after this many requests (0: until signalled)")
    args = p.parse_args(argv)
    if not 0.001 <= args.interval <= 60:
        p.error("--interval must be between 0.001 and 60 seconds")
    stop = False

    def on_signal(_signum, _frame) -> None:
        nonlocal stop
        stop = True
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ident = os.getpid() & 0xFFFF
    answered: set[int] = set()
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        next_send = time.monotonic()
        while not stop and (not args.count or sent < args.count):
            now = time.monotonic()
            if now >= next_send:
                try:
                    sock.sendto(echo_request(ident, sent), (args.address, 0))
                except OSError:   # no route for a moment: counted as lost
                    pass
                sent += 1
                next_send += args.interval
            ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
            if ready:
                seq = reply_seq(sock.recv(65535), ident)
                if seq is not None and seq not in answered:
                    answered.add(seq)
                    print(f"reply seq={seq}", flush=True)
        if args.count:   # the last replies' time to come back
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and len(answered) < sent:
                if select.select([sock], [], [], 0.05)[0]:
                    seq = reply_seq(sock.recv(65535), ident)
                    if seq is not None and seq not in answered:
                        answered.add(seq)
                        print(f"reply seq={seq}", flush=True)
    print(f"sent {sent} received {len(answered)} lost {sent - len(answered)} "
          f"longest_gap_ms {gap_ms(answered, args.interval)}", flush=True)
    return 0 if answered else 1


if __name__ == "__main__":
    sys.exit(main())
