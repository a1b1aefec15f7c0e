"""The suite's fixtures, and its promise to leave the machine's own network namespace as it found it."""
from __future__ import annotations

import json
import subprocess

import pytest

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.manager", "tests.fixtures.netns"]


def _root_namespace_links() -> set[str]:
    done = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True)
    return {link["ifname"] for link in json.loads(done.stdout or "[]")} if done.returncode == 0 else set()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_LINKS_BEFORE] = _root_namespace_links()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Everything the tests make belongs in namespaces they create; a device left here is a defect."""
    before = session.config.stash.get(_LINKS_BEFORE, None)
    if before is None:
        return
    leaked = sorted(_root_namespace_links() - before)
    if leaked:
        session.config.get_terminal_writer().line()
        session.config.get_terminal_writer().line(
            f"devices appeared in the machine's own network namespace during the tests: {', '.join(leaked)}",
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LINKS_BEFORE = pytest.StashKey[set[str]]()
