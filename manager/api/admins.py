"""AdminService: admins of the remote fleet API (all admin-only: manager/auth/roles.py)."""
from __future__ import annotations

from virtfleet.rpc import translating_errors
from virtfleet.v1 import admins_pb2, admins_pb2_grpc

from ..service.admins import AdminService
from ..store.admins import AdminRecord
from .timestamps import timestamp


def admin_message(a: AdminRecord) -> admins_pb2.Admin:
    return admins_pb2.Admin(name=a.name, role=a.role, cert_fingerprint=a.cert_fingerprint, cert_serial=a.cert_serial,
                            created_at=timestamp(a.created_at), created_by=a.created_by,
                            revoked_at=timestamp(a.revoked_at))


class AdminServicer(admins_pb2_grpc.AdminServiceServicer):
    def __init__(self, admins: AdminService) -> None:
        self._admins = admins

    @translating_errors
    def AddAdmin(self, request, context):
        record, cert, ca = self._admins.add(name=request.name, role=request.role, csr_pem=request.csr_pem)
        return admins_pb2.AddAdminResponse(admin=admin_message(record), certificate_pem=cert, ca_certificate_pem=ca)

    @translating_errors
    def ListAdmins(self, request, context):
        return admins_pb2.ListAdminsResponse(admins=[admin_message(a) for a in self._admins.list()])

    @translating_errors
    def RevokeAdmin(self, request, context):
        return admin_message(self._admins.revoke(request.name))

    @translating_errors
    def SetAdminRole(self, request, context):
        return admin_message(self._admins.set_role(request.name, request.role))
