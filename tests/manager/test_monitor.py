"""The host monitor starts nothing until told to, and follows the hosts watched before then once started."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from agent.sim.fleet import FleetSimulator
from agent.sim.pki import fleet_material
from manager.app import ManagerApp
from manager.config import ManagerConfig
from tests.fixtures.lab import eventually
from virtfleet.enroll import make_key_and_csr


def _monitor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "host-monitor"]


def test_a_host_enrolled_before_the_monitor_starts_is_followed_from_its_start(empty_db):
    with tempfile.TemporaryDirectory(prefix="vft-mon-") as d:
        root = Path(d)
        app = ManagerApp.create(ManagerConfig(dsn=empty_db, listen=str(root / "m.sock"), pki_dir=root / "pki"))
        try:
            assert _monitor_threads() == []
            sim = FleetSimulator(fleet_material(app.ca.key, app.ca.cert, ["sim00001"]), root / "sim.sock", hosts=1)
            with sim:
                _, csr = make_key_and_csr("sim00001")
                app.hosts.enroll(name="sim00001", address=sim.specs[0].address, endpoint=sim.endpoint, cluster="",
                                 csr_pem=csr)
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
