"""The lab's pinger: the longest gap it reports, and real echoes in a namespace of the test's own."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from manager.lab.pinger import checksum, echo_request, gap_ms


def test_the_longest_run_of_unanswered_requests_is_the_gap():
    assert gap_ms([0, 1, 2, 3], 0.01) == 0
    assert gap_ms([0, 1, 5, 6, 9], 0.01) == 30          # 2, 3, 4 missing
    assert gap_ms([7, 0, 1, 7], 0.01) == 50             # order and repeats do not matter
    assert gap_ms([], 0.01) == 0


def test_an_echo_request_carries_a_valid_checksum():
    assert checksum(echo_request(0x1234, 7)) == 0        # the sum over a packet with its checksum is zero


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets and namespaces need root")
def test_it_pings_loopback_in_a_namespace_and_sums_up():
    ns = f"vfpg-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "manager.lab.pinger", "127.0.0.1",
                               "--count", "5", "--interval", "0.01"], capture_output=True, text=True, timeout=30)
        lines = done.stdout.splitlines()
        assert done.returncode == 0
        assert [f"reply seq={i}" for i in range(5)] == lines[:-1]
        assert lines[-1] == "sent 5 received 5 lost 0 longest_gap_ms 0"
        unreachable = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "manager.lab.pinger",
                                      "192.0.2.99", "--count", "2", "--interval", "0.01"], capture_output=True,
                                     text=True, timeout=30)
        assert unreachable.returncode == 1 and "received 0 lost 2" in unreachable.stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
