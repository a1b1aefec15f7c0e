"""Call every fleet-API method once with an empty request and print each outcome as JSON.

Run as root by the role-matrix test with `--uid/--gid`: everything is imported first
(the interpreter may live where the user cannot read), then the process drops to the
user with setgroups/setgid/setuid before it opens any connection, so the manager's
login socket sees that user's uid through SO_PEERCRED.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2  # noqa: F401 - registers the descriptors looked up below
from grpc_reflection.v1alpha import reflection_pb2  # noqa: F401

import virtfleet.v1.admins_pb2, virtfleet.v1.audit_pb2, virtfleet.v1.fleet_pb2  # noqa: E401,F401
import virtfleet.v1.events_pb2, virtfleet.v1.macpool_pb2, virtfleet.v1.pki_pb2, virtfleet.v1.vms_pb2  # noqa: E401,F401
import virtfleet.v1.profiles_pb2  # noqa: F401
from manager.auth.roles import REQUIRED_ROLE
from manager.client import open_channel

TIMEOUT_S = 20.0


def shape(method: str) -> tuple[bool, bool]:
    """(client streaming, server streaming) from the method's descriptor."""
    service, name = method.strip("/").split("/")
    m = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    return m.client_streaming, m.server_streaming


def call(channel: grpc.Channel, method: str) -> tuple[str, str]:
    ident = dict(request_serializer=None, response_deserializer=None)
    client_streaming, server_streaming = shape(method)
    try:
        if client_streaming:
            replies = channel.stream_stream(method, **ident)(iter([]), timeout=TIMEOUT_S)
            for _ in replies:
                pass
        elif server_streaming:
            replies = channel.unary_stream(method, **ident)(b"", timeout=TIMEOUT_S)
            # The manager sends its headers (x-request-id) once a call is let in, before the servicer
            # runs; a refusal is a trailers-only answer. So the headers tell, without waiting for an
            # item that a follow stream (FollowEvents) may never send.
            replies.initial_metadata()
            if replies.done():
                for _ in replies:        # ended already: raises its status if it was not OK
                    pass
            replies.cancel()
        else:
            channel.unary_unary(method, **ident)(b"", timeout=TIMEOUT_S)
    except grpc.RpcError as exc:
        return exc.code().name, exc.details() or ""
    return "OK", ""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("target")
    p.add_argument("--cert-dir")
    p.add_argument("--uid", type=int)
    p.add_argument("--gid", type=int)
    args = p.parse_args()
    if args.uid is not None:
        os.setgroups([])
        os.setgid(args.gid)
        os.setuid(args.uid)
    with open_channel(args.target, cert_dir=args.cert_dir) as channel:
        json.dump({m: call(channel, m) for m in sorted(REQUIRED_ROLE)}, sys.stdout)


if __name__ == "__main__":
    main()
