"""Regenerate fixtures/: `python -m validator.synth.fixtures fixtures` (or `python3 tasks.py fixtures`).

fixtures/demo            a clean trail: two regions, six hours, a key rotation at hour 3
fixtures/demo-tampered   the same trail after an attacker with write access (and, for one
                         chain link, a signing key) went through it; EXPECTED.txt lists each change
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import generate
from . import tamper as T

TAMPERS = [
    "modify-log:us-east-1:1",
    "delete-log:eu-west-1:2",
    "inject-log:us-east-1:4",
    "modify-digest:eu-west-1:4",
    "reencrypt-digest:us-east-1:5",
    "delete-digest:us-east-1:2",
]


def build(root: Path) -> None:
    trail = generate(seed=42)
    for name in ("demo", "demo-tampered"):
        shutil.rmtree(root / name, ignore_errors=True)
    trail.write_evidence(str(root / "demo"))
    done = [T.apply_named(trail, t) for t in TAMPERS]
    trail.write_evidence(str(root / "demo-tampered"))
    (root / "demo-tampered" / "EXPECTED.txt").write_text(
        "Changes made to fixtures/demo to make this copy (see validator/synth/fixtures.py):\n"
        + "".join(f"- {t}: {d}\n" for t, d in zip(TAMPERS, done)))


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "fixtures"))
