"""Regenerate the Python code of the contract from the .proto files.

Run as `python protos/generate.py [OUT_DIR]`; without OUT_DIR it writes beside
the .proto files. The test suite generates into a scratch directory and
compares, so a .proto edited without regenerating fails CI.
"""
from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc
import grpc_tools

PROTO_ROOT = Path(__file__).resolve().parent


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "virtfleet" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> None:
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT)
