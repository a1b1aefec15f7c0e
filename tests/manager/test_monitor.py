"""The host monitor starts nothing until told to, and follows the hosts watched before then once started."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from agent.sim.fleet import FleetSimulator
from tests.fixtures.agent_process import simulated_fleet_material
from manager.app import ManagerApp
from manager.config import ManagerConfig
from tests.fixtures.lab import eventually


def _monitor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "host-monitor"]


def test_a_host_enrolled_before_the_monitor_starts_is_followed_from_its_start(empty_db):
    with tempfile.TemporaryDirectory(prefix="vft-mon-") as d:
        root = Path(d)
        app = ManagerApp.create(ManagerConfig(dsn=empty_db, listen=str(root / "m.sock"), pki_dir=root / "pki"))
        try:
            assert _monitor_threads() == []
            material = simulated_fleet_material(app.ca, lambda spec, csr: app.hosts.enroll(
                name=spec.name, address=spec.address, endpoint=f"unix://{root / 'sim.sock'}", cluster="",
                csr_pem=csr).certificate_pem, hosts=1)
            sim = FleetSimulator(material, root / "sim.sock", hosts=1)
            with sim:
                assert _monitor_threads() == [] and app.monitor.watched() == {"sim00001"}
                assert app.monitor.current("sim00001") is None
                app.start_background()
                assert _monitor_threads() == ["host-monitor"]
                assert eventually(lambda: (h := app.monitor.current("sim00001")) is not None
                                  and h.state == sim.hosts["sim00001"].state)
        finally:
            app.close()
        assert _monitor_threads() == []


def test_a_monitor_never_started_stops_quietly(empty_db):
    with tempfile.TemporaryDirectory(prefix="vft-mon-") as d:
        root = Path(d)
        app = ManagerApp.create(ManagerConfig(dsn=empty_db, listen=str(root / "m.sock"), pki_dir=root / "pki"))
        app.monitor.flush()
        app.close()
    assert _monitor_threads() == []
