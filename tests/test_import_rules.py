"""The house's import rules, checked on every module: arrows point downward only.

Walks each module's imports with `ast` (relative imports resolved), so an upward
arrow fails here before a reviewer has to find it. The rules are the ones
docs/ARCHITECTURE.md draws: the CLI is a client of the contract, pure decision
modules never reach the database, the netlink layer knows nothing of the layers
built on it, and the manager and the agent share only the `virtfleet` package.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"manager": ROOT / "manager", "agent": ROOT / "agent", "virtfleet": ROOT / "protos" / "virtfleet"}

# (importer prefix, imported prefix, why it is forbidden)
FORBIDDEN = [
    ("manager.cli", "manager.api", "the CLI is a client: it speaks the contract, not the server's code"),
    ("manager.cli", "manager.service", "the CLI is a client"),
    ("manager.cli", "manager.store", "the CLI is a client"),
    ("manager.cli", "manager.pki", "the CLI is a client (enrollment lives in virtfleet.enroll)"),
    ("manager.cli", "manager.domain", "the CLI is a client: the contract carries what it renders"),
    ("manager.cli", "manager.agents", "the CLI is a client"),
    ("manager.domain", "manager.store", "pure decisions do no I/O"),
    ("manager.domain", "manager.service", "pure decisions sit below the services"),
    ("manager.domain", "manager.api", "pure decisions sit below the API"),
    ("manager.macpool", "manager.store", "the allocator is pure; the database is the store's"),
    ("manager.audit", "manager.store", "findings are pure functions of typed inputs"),
    ("manager.audit", "manager.service", "findings are pure functions of typed inputs"),
    ("manager.store", "manager.service", "the store sits below the services"),
    ("manager.store", "manager.api", "the store sits below the API"),
    ("manager.service", "manager.api", "services sit below the API"),
    ("manager.service", "manager.cli", "services sit below every client"),
    ("manager.agents", "manager.service", "agent clients sit below the services"),
    ("manager.agents", "manager.api", "agent clients sit below the API"),
    ("agent.net.netlink", "agent.net.report", "netlink is the bottom layer"),
    ("agent.net.netlink", "agent.net.apply", "netlink is the bottom layer"),
    ("agent.net.netlink", "agent.net.hostnet", "netlink is the bottom layer"),
    ("agent.net.report", "agent.net.apply", "reading the host never needs the writer"),
    ("agent.net.report", "agent.net.hostnet", "reading the host sits below setupNetworks"),
    ("agent.net.apply", "agent.net.hostnet", "the transaction machinery sits below setupNetworks"),
    ("agent.net", "agent.rpc", "the host's code sits below its gRPC servers"),
    ("agent.virt", "agent.rpc", "the VM runtime sits below its gRPC server"),
    ("manager", "agent", "manager and agent share only the virtfleet package"),
    ("agent", "manager", "manager and agent share only the virtfleet package"),
    ("virtfleet", "manager", "the shared core imports neither end"),
    ("virtfleet", "agent", "the shared core imports neither end"),
]


def module_name(package: str, path: Path) -> str:
    rel = path.relative_to(PACKAGES[package]).with_suffix("")
    parts = [package, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, path: Path) -> set[str]:
    """Every module `name` imports, as absolute dotted names (`from x import y` yields x and x.y)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def all_modules() -> list[tuple[str, Path]]:
    return [(module_name(pkg, p), p) for pkg, root in PACKAGES.items() for p in sorted(root.rglob("*.py"))
            if "_pb2" not in p.name]


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def upward_arrows() -> list[str]:
    arrows = []
    for name, path in all_modules():
        for target in sorted(imports_of(name, path)):
            for importer, imported, why in FORBIDDEN:
                if under(name, importer) and under(target, imported) and not under(target, importer):
                    arrows.append(f"{name} imports {target}: {why}")
    return sorted(set(arrows))


def test_no_module_imports_upward():
    assert upward_arrows() == []


@pytest.mark.parametrize("importer, imported", [
    ("manager.cli.vms", "manager.service.vms"),
    ("manager.domain.vnic", "manager.store.vms"),
    ("agent.net.netlink.socket", "agent.net.apply.batch"),
    ("manager.service.hosts", "agent.net"),
])
def test_the_rules_catch_an_upward_arrow(importer, imported):
    assert any(under(importer, a) and under(imported, b) and not under(imported, a) for a, b, _ in FORBIDDEN)


def test_relative_imports_resolve_to_absolute_names(tmp_path):
    pkg = tmp_path / "cli"
    pkg.mkdir()
    (pkg / "vms.py").write_text("from ..service import vms\nfrom . import output\nfrom .output import x\n")
    found = imports_of("manager.cli.vms", pkg / "vms.py")
    assert {"manager.service", "manager.service.vms", "manager.cli", "manager.cli.output"} <= found
