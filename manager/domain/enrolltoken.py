"""One-time enrollment tokens: their shape, and the only form the manager keeps of them (pure).

A token is `vfe_` and 32 random bytes, URL-safe base64 without padding (47 characters): the
prefix tells what it is in a shell history, and a token never begins with '-' (which
command lines would take for an option). The database holds its SHA-256 alone, so a
copy of the database enrolls nothing.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from virtfleet.errors import InvalidArgument

TOKEN_BYTES = 32
PREFIX = "vfe_"
_SHAPE = re.compile(r"^vfe_[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def check_token(token: str, field: str = "token") -> str:
    if not token:
        raise InvalidArgument(field, "an enrollment token is required (`virtfleet host add` prints it)")
    if not _SHAPE.match(token):
        raise InvalidArgument(field, "not an enrollment token: expected vfe_ and 43 characters of A-Z, a-z, 0-9, '-' and '_'")
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
