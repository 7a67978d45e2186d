"""`acquire` from the endpoint, then `validate --source` with no AWS at all."""

from __future__ import annotations

import gzip
import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from validator.sources.evidence import object_path
from validator.synth.s3writer import create_kms_key, write_trail
from validator.synth.tamper import reencrypt

from .awsproxy import Fault
from .conftest import _clean_env, run_cli, wait_for_calls

pytestmark = pytest.mark.integration


def _seal(stdout: str) -> tuple[str, list[str]]:
    lines = stdout.splitlines()
    assert lines[0].startswith("manifest-sha256: ")
    seal = lines[0].split(": ", 1)[1]
    assert len(seal) == 64 and int(seal, 16) >= 0
    fps = [line.split(": ", 1)[1] for line in lines[1:]]
    assert all(line.startswith("key-fingerprint: ") for line in lines[1:])
    return seal, fps


def _offline(trail, dest: Path, *extra: str):
    return run_cli(["validate", "--trail-arn", trail.arn, "--output", "json", "--source", str(dest), *extra])


def test_acquire_then_validate_offline(world, tmp_path):
    trail = world.deploy(kms_key_arn="create", bucket_default_key="create")
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 0, acq.stderr
    seal, fps = _seal(acq.stdout)
    assert sorted(fps) == sorted(e["Fingerprint"] for e in trail.public_key_list())
    manifest = dest / "manifest.jsonl"
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == seal
    lines = manifest.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    assert header["trail"]["latest_digest_delivery"]
    assert header["trail"]["kms_key_id"] == trail.spec.kms_key_arn
    assert header["trail"]["bucket_default_key"] == trail.spec.bucket_default_key
    entries = [orjson.loads(x) for x in lines[1:]]
    assert {(e["bucket"], e["key"]) for e in entries} == {(r.bucket, r.key) for r in trail.objects}
    assert all(e["error"] is None for e in entries)
    # each object byte for byte as S3 returned it, with its encryption and signature metadata
    for e in entries:
        obj = next(o for o in trail.objects.values() if o.ref.key == e["key"])
        assert (dest / e["file"]).read_bytes() == obj.body
        assert e["sse"] == obj.meta.sse and e["kms_key_id"] == obj.meta.kms_key_id
        assert e["metadata"] == dict(obj.meta.metadata)

    live = world.validate(trail)
    offline = _offline(trail, dest, "--manifest-sha256", seal)
    assert offline.exit_code == 0, offline.stdout + offline.stderr
    assert offline.verdicts() == live.verdicts()
    assert offline.summary["trust"] == {"public_keys": "evidence", "manifest_sha256": seal}

    # one log file changed inside the evidence directory: exit 1, naming it
    log = trail.logs(region="eu-west-1")[1]
    path = dest / object_path(log.ref.bucket, log.ref.key)
    raw = gzip.decompress(path.read_bytes()).replace(b'"eventName":"', b'"eventName":"X', 1)
    path.write_bytes(gzip.compress(raw))
    changed = _offline(trail, dest, "--manifest-sha256", seal)
    assert changed.exit_code == 1
    rec = changed.by_key(log.ref.key)
    assert (rec["status"], rec["reason"]) == ("invalid", "evidence_modified")
    assert changed.problems() == {("log", "invalid", "evidence_modified"): 1}


def test_acquire_keeps_the_live_verdicts_of_a_tampered_trail(world, tmp_path):
    """Unreadable objects are recorded with their HEAD metadata: the offline verdicts are the live ones."""
    attacker = create_kms_key(world.target, description="attacker")
    marks = {}

    def tamper(trail):
        logs = trail.logs(region="us-east-1")
        reencrypt(trail, logs[0].ref, kms_key=attacker)  # foreign KMS key
        trail.with_meta(logs[1].ref, sse=None, kms_key_id=None, sse_customer_algorithm="AES256")  # SSE-C
        trail.with_meta(logs[2].ref, storage_class="GLACIER")  # archived
        marks["denied"] = logs[3].ref

    trail = world.build(("modify-log:eu-west-1:0", "inject-log:eu-west-1:2", "delete-log:eu-west-1:2"),
                        mutate=tamper, kms_key_arn="create")
    write_trail(trail, world.target)
    world.register(trail)
    world.state.denied_kms_keys.add(attacker)
    world.state.denied_objects.add((marks["denied"].bucket, marks["denied"].key))

    live = world.validate(trail)
    assert live.problems() == {
        ("log", "invalid", "foreign_encryption"): 2, ("log", "unverifiable", "archived"): 1,
        ("log", "unverifiable", "access_denied"): 1, ("log", "invalid", "hash_mismatch"): 1,
        ("log", "invalid", "unreferenced"): 1, ("log", "missing", "not_found"): 1}
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 3, acq.stderr  # complete and sealed, but some objects could not be read
    assert acq.stderr.count("ctvalidate: unreadable: ") == 4
    offline = _offline(trail, dest)
    assert offline.exit_code == live.exit_code == 1
    assert offline.verdicts() == live.verdicts()


def test_acquire_with_kms_access_denied(world, tmp_path):
    trail = world.deploy(kms_key_arn="create")
    world.state.denied_kms_keys.add(trail.spec.kms_key_arn)
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 3
    offline = _offline(trail, dest)
    assert offline.exit_code == 3
    assert offline.summary["logs"] == {"unverifiable": len(trail.logs())}
    assert {r["reason"] for r in offline.of("log")} == {"kms_access_denied"}


def test_acquire_with_key_files_stores_them(world, tmp_path):
    trail = world.deploy()
    keys = tmp_path / "keys.json"
    keys.write_bytes(orjson.dumps(trail.public_keys_doc()))
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest, "--public-keys", str(keys))
    assert acq.exit_code == 0, acq.stderr
    assert not world.state.calls_of("ListPublicKeys")
    stored = json.loads((dest / "public-keys.json").read_text())
    assert stored == trail.public_keys_doc()
    assert _offline(trail, dest).exit_code == 0


def test_acquire_a_window_copies_its_neighbours(world, tmp_path):
    """With --start-time/--end-time: the digests in the window, the chain neighbours, and their logs."""
    trail = world.deploy(hours=6, rotate_at_hour=None, regions=("us-east-1",))
    start, end = "2026-11-02T02:00:00Z", "2026-11-02T04:00:00Z"
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest, "--start-time", start, "--end-time", end)
    assert acq.exit_code == 0, acq.stderr
    live = world.validate(trail, "--start-time", start, "--end-time", end)
    offline = _offline(trail, dest, "--start-time", start, "--end-time", end)
    assert offline.exit_code == live.exit_code == 0
    assert offline.verdicts() == live.verdicts()
    keys = {orjson.loads(x)["key"] for x in (dest / "manifest.jsonl").read_bytes().splitlines()[1:]}
    assert len(keys) < len(trail.objects)  # not the whole bucket


def test_acquire_refuses_a_non_empty_directory(world, tmp_path):
    trail = world.deploy()
    dest = tmp_path / "evidence"
    dest.mkdir()
    (dest / "something").write_text("x")
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 2
    assert "not empty" in acq.stderr


def test_interrupted_acquire_leaves_no_manifest(world, tmp_path, ctvalidate_bin):
    trail = world.deploy()
    world.state.faults.append(Fault("delay", "", times=-1, delay=0.5))  # every object read is slow
    dest = tmp_path / "evidence"
    proc = subprocess.Popen([ctvalidate_bin, "acquire", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint,
                             "--workers", "2", str(dest)], env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_calls(world, proc, "GetObject")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "manifest-sha256" not in out
    assert not (dest / "manifest.jsonl").exists()
    assert "interrupted" in err
    assert "Traceback" not in err
    offline = run_cli(["validate", "--trail-arn", trail.arn, "--source", str(dest)])
    assert offline.exit_code == 2 and "interrupted" in offline.stderr


@pytest.mark.parametrize("tamper", ["modify-digest:us-east-1:1", "delete-digest:eu-west-1:1:2", "delete-tail:1.5",
                                    "replay-digest:us-east-1:2", "inject-log:eu-west-1:4"])
def test_acquire_keeps_the_live_verdicts_of_broken_chains(world, tmp_path, tamper):
    """Log files that no trusted digest lists are listed, not read, by the validation: they are copied too."""
    trail = world.deploy((tamper,))
    live = world.validate(trail)
    dest = tmp_path / "evidence"
    assert world.acquire(trail, dest).exit_code == 0
    offline = _offline(trail, dest)
    assert offline.exit_code == live.exit_code
    assert offline.verdicts() == live.verdicts()


def test_acquire_reads_a_broken_body_again(world, tmp_path):
    trail = world.deploy()
    log = trail.logs(region="eu-west-1")[2]
    world.state.faults.append(Fault("truncate", log.ref.key, times=1))
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 0, acq.stderr
    assert (dest / object_path(log.ref.bucket, log.ref.key)).read_bytes() == log.body
    assert not list(dest.rglob("*.part"))
    assert _offline(trail, dest).exit_code == 0


def test_acquire_without_describe_trails(world, tmp_path):
    """A copy whose trail the endpoint does not know: the evidence validates with the same --s3-bucket."""
    trail = world.build()
    copy = f"copy-{world.suffix}"
    write_trail(trail, world.target, bucket=copy)
    world.register(trail)
    dest = tmp_path / "evidence"
    args = ("--s3-bucket", copy)
    acq = world.acquire(trail, dest, *args)
    assert acq.exit_code == 0, acq.stderr
    assert f"--s3-bucket {copy}" in acq.stderr
    live = world.validate(trail, *args, "--copy-of", f"s3://{trail.spec.bucket}")
    offline = _offline(trail, dest, *args, "--copy-of", f"s3://{trail.spec.bucket}")
    assert live.exit_code == offline.exit_code == 0
    assert offline.verdicts() == live.verdicts()
