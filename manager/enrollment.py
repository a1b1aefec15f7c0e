"""The enrolling side of host enrollment: make a key, ask the manager to sign it.

Shared by `virtfleet host add` and the lab. The private key is written only to
the agent's PKI directory; the manager sees the CSR alone.
"""
from __future__ import annotations

from pathlib import Path

from virtfleet.tls import TlsMaterial
from virtfleet.v1 import fleet_pb2, fleet_pb2_grpc

from .pki import make_key_and_csr


def enroll_host(
    stub: fleet_pb2_grpc.FleetServiceStub, *, name: str, address: str, endpoint: str = "", cluster: str = "",
    pki_out: Path,
) -> fleet_pb2.Host:
    key_pem, csr_pem = make_key_and_csr(name)
    reply = stub.EnrollHost(
        fleet_pb2.EnrollHostRequest(name=name, address=address, endpoint=endpoint, cluster=cluster, csr_pem=csr_pem),
        timeout=30,
    )
    TlsMaterial(reply.ca_certificate_pem, reply.certificate_pem, key_pem).save(pki_out)
    return reply.host
