"""The checked-in Python code of the contract is what grpcio-tools makes from the .proto files."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_not_stale(tmp_path: Path):
    gen = _load_generator()
    gen.generate(tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    checked_in_dir = ROOT / "protos"
    stale = [str(rel) for rel, data in fresh.items() if (checked_in_dir / rel).read_bytes() != data]
    assert fresh, "protoc generated nothing"
    assert stale == [], f"regenerate with `python protos/generate.py`: {stale}"
