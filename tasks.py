#!/usr/bin/env python3
"""The two commands a newcomer runs (each does its own set-up in .venv):

    python3 tasks.py demo    validate the bundled fixtures: a clean trail, then the tampered copy
    python3 tasks.py test    run every test (unit, evidence, and integration against a loopback moto server)

Also: `python3 tasks.py fixtures` regenerates fixtures/, `python3 tasks.py bench` runs the benchmarks.
Only Python 3.11+ with venv and pip is needed; everything else installs from pyproject.toml.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"
DEMO_ARN = "arn:aws:cloudtrail:us-east-1:111122223333:trail/demo-trail"


def ensure_env(extras: str = "test") -> None:
    """Create .venv and install the project with its extras, again whenever pyproject.toml changes."""
    if sys.version_info < (3, 11):
        sys.exit("ctvalidate needs Python 3.11 or newer")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == want and PY.exists():
        return
    if not PY.exists():
        print("creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "--quiet", "-e", f".[{extras}]"])
    STAMP.write_text(want)


def run(cmd: list[str], check: bool = True) -> int:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if check and rc != 0:
        sys.exit(rc)
    return rc


def demo() -> int:
    ensure_env()
    ctv = str(BIN / "ctvalidate")
    print("\n== A clean trail (two regions, six hours, a key rotation): expect exit 0\n", flush=True)
    clean = run([ctv, "validate", "--trail-arn", DEMO_ARN, "--source", "fixtures/demo"], check=False)
    print(f"exit code {clean}\n", flush=True)
    print("== The tampered copy: expect exit 1, each change named\n", flush=True)
    tampered = run([ctv, "validate", "--trail-arn", DEMO_ARN, "--source", "fixtures/demo-tampered"], check=False)
    print(f"exit code {tampered}", flush=True)
    ok = clean == 0 and tampered == 1
    print("\ndemo: " + ("as expected" if ok else "UNEXPECTED exit codes"), flush=True)
    return 0 if ok else 1


def test(args: list[str]) -> int:
    ensure_env()
    return run([str(PY), "-m", "pytest", *args], check=False)


def fixtures() -> int:
    ensure_env()
    return run([str(PY), "-m", "validator.synth.fixtures", "fixtures"], check=False)


def bench(args: list[str]) -> int:
    ensure_env("test,bench")
    return run([str(PY), "-m", "benchmarks.run", *args], check=False)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test", "fixtures", "bench"):
        print(__doc__)
        return 2
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "demo":
        return demo()
    if cmd == "test":
        return test(rest)
    if cmd == "fixtures":
        return fixtures()
    return bench(rest)


if __name__ == "__main__":
    sys.exit(main())
