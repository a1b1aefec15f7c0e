"""AuditService: findings for the admin, and fixing them where safe."""
from __future__ import annotations

from virtfleet.rpc import translating_errors
from virtfleet.v1 import audit_pb2, audit_pb2_grpc

from ..audit import Finding, filter_findings
from ..service.audit import AuditRun, AuditService, check_category
from .timestamps import timestamp


def finding_message(f: Finding) -> audit_pb2.Finding:
    return audit_pb2.Finding(id=f.id, category=f.category, severity=f.severity.value, host=f.host, object=f.object,
                             expected=f.expected, found=f.found, fix=f.fix, fixable=f.fixable)


def report_message(run: AuditRun, host: str, category: str) -> audit_pb2.AuditReport:
    shown = filter_findings(run.findings, host=host, category=category)
    return audit_pb2.AuditReport(findings=[finding_message(f) for f in shown], ran_at=timestamp(run.ran_at),
                                 duration_s=run.duration_s, hosts=run.hosts, total=len(run.findings))


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audits: AuditService) -> None:
        self._audits = audits

    @translating_errors
    def RunAudit(self, request, context):
        check_category(request.category)
        return report_message(self._audits.run(), request.host, request.category)

    @translating_errors
    def ListFindings(self, request, context):
        check_category(request.category)
        return report_message(self._audits.latest(), request.host, request.category)

    @translating_errors
    def FixFinding(self, request, context):
        result = self._audits.fix(request.id, plan=request.plan)
        return audit_pb2.FixFindingResponse(finding=finding_message(result.finding), steps=result.steps,
                                            applied=result.applied,
                                            remaining=[finding_message(f) for f in result.remaining])
