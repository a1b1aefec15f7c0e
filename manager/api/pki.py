"""PkiService: host certificates on the fleet API (admin)."""
from __future__ import annotations

from virtfleet.rpc import translating_errors
from virtfleet.v1 import pki_pb2, pki_pb2_grpc

from ..service.hosts import HostService


class PkiServicer(pki_pb2_grpc.PkiServiceServicer):
    def __init__(self, hosts: HostService) -> None:
        self._hosts = hosts

    @translating_errors
    def RevokeHostCertificate(self, request, context):
        revoked = self._hosts.revoke_certificate(request.name)
        return pki_pb2.RevokeHostCertificateResponse(fingerprint=revoked.fingerprint)
