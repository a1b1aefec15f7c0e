"""PkiService: host certificate revocation, the CAs and certificates as the admin sees them, and CA rollover."""
from __future__ import annotations

from virtfleet.rpc import translating_errors
from virtfleet.v1 import pki_pb2, pki_pb2_grpc

from ..service.certificates import CertificateService, CertificateView, PkiStatus
from ..service.hosts import HostService
from .timestamps import timestamp


def certificate_message(view: CertificateView) -> pki_pb2.CertificateStatus:
    return pki_pb2.CertificateStatus(
        name=view.name, fingerprint=view.fingerprint, issuer_fingerprint=view.issuer_fingerprint,
        not_before=timestamp(view.not_before), not_after=timestamp(view.not_after),
        renew_at=timestamp(view.renew_at), renew_due=view.renew_due, pin=view.pin)


def status_message(status: PkiStatus) -> pki_pb2.PkiStatus:
    return pki_pb2.PkiStatus(
        cas=[pki_pb2.CertificateAuthorityStatus(fingerprint=ca.fingerprint, not_before=timestamp(ca.not_before),
                                                not_after=timestamp(ca.not_after), state=ca.state)
             for ca in status.cas],
        hosts=[certificate_message(h) for h in status.hosts], manager=certificate_message(status.manager),
        trust_generation=status.trust_generation)


class PkiServicer(pki_pb2_grpc.PkiServiceServicer):
    def __init__(self, hosts: HostService, certificates: CertificateService) -> None:
        self._hosts = hosts
        self._certificates = certificates

    @translating_errors
    def RevokeHostCertificate(self, request, context):
        revoked = self._hosts.revoke_certificate(request.name)
        return pki_pb2.RevokeHostCertificateResponse(fingerprint=revoked.fingerprint)

    @translating_errors
    def RotateCa(self, request, context):
        return status_message(self._certificates.rotate_ca())

    @translating_errors
    def GetPkiStatus(self, request, context):
        return status_message(self._certificates.status())
