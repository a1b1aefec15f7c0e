"""`python -m agent.guest [--cache DIR]`: build (or find) the cached test guest and print where it is.

For where an agent cannot build it itself: an agent inside a network namespace with no route to the
Debian mirror (every lab host) finds the guest in the shared cache once this has run in the machine's
own namespace (`virtfleet lab up --guest` runs it). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys

from virtfleet.errors import VirtfleetError

from .image import cache_dir, ensure_guest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.guest", description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=None, help=f"the cache directory (default: {cache_dir()})")
    args = p.parse_args(argv)
    try:
        image = ensure_guest(args.cache)
    except VirtfleetError as err:
        print(f"agent.guest: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"kernel": str(image.kernel), "initrd": str(image.initrd), "cmdline": image.cmdline,
                      "key": image.key, "built": image.built}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
