"""`virtfleet audit --category` offers every category the audit reports (guest-nic was once missing)."""
from manager.audit.findings import CATEGORIES
from manager.cli.audit import CATEGORY_CHOICES


def test_the_cli_offers_every_audit_category():
    assert sorted(CATEGORY_CHOICES) == sorted(CATEGORIES)
