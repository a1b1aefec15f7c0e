"""A unix-socket session the manager no longer knows is renewed by the client, transparently, once."""
from __future__ import annotations

from manager.api.listeners import serve
from manager.auth.sessions import SessionBook
from virtfleet.v1 import fleet_pb2


def test_a_restarted_manager_forgets_sessions_and_the_client_logs_in_again(manager):
    hosts = manager.fleet.ListHosts(fleet_pb2.ListHostsRequest(), timeout=30)
    manager.listeners.stop(grace=None)
    manager.app.sessions = SessionBook()       # what a new manager process starts with
    again = serve(manager.app, manager.cfg, max_workers=4)
    try:
        assert manager.fleet.ListHosts(fleet_pb2.ListHostsRequest(), timeout=30) == hosts
    finally:
        again.stop(grace=None)
