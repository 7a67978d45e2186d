"""--state over the loopback moto server: a daily job costs only the new hour's GETs, and the state it keeps
is a trust anchor (changes behind its back, another trail's state, a concurrent or interrupted run)."""

from __future__ import annotations

import copy
import signal
import sqlite3
import subprocess
import time
from datetime import timedelta

import pytest

from validator.model import ObjectRef, parse_key
from validator.state import file_sha256
from validator.synth import SyntheticTrail
from validator.synth import tamper as T
from validator.synth.s3writer import put_object, write_trail

from .awsproxy import Fault
from .conftest import _clean_env, run_cli, wait_for_calls

pytestmark = pytest.mark.integration


def _hour(ref: ObjectRef) -> int:
    name = parse_key(ref.key)
    return int((name.time - timedelta(minutes=1) if name.is_digest else name.time).timestamp() // 3600)


def deploy_all_but_last_hour(world, **overrides) -> tuple[SyntheticTrail, list]:
    """Deploy a trail without its newest hour; return the whole trail and the held-back hour's objects."""
    trail = world.build(**overrides)
    last = max(_hour(r) for r in trail.objects)
    early = copy.copy(trail)
    early.objects = {r: o for r, o in trail.objects.items() if _hour(r) < last}
    write_trail(early, world.target)
    world.register(trail)
    return trail, [o for r, o in sorted(trail.objects.items()) if _hour(r) == last]


def gets(world) -> set[str]:
    return {c[3] for c in world.state.calls_of("GetObject")}


def forget_calls(world) -> None:
    with world.state.lock:
        world.state.calls.clear()


def anchor_of(run) -> str:
    sha = run.summary["trust"]["state_sha256"]
    assert sha and f"SHA-256 {sha}" in run.stderr
    return sha


def test_the_next_run_validates_only_the_new_hour(world, tmp_path):
    state = str(tmp_path / "trail.state")
    trail, new_hour = deploy_all_but_last_hour(world)
    first = world.validate(trail, "--state", state)
    assert first.exit_code == 0, first.stderr
    assert first.summary["from_state"] == {"digests": 0, "logs": 0}
    for obj in new_hour:  # an hour later, CloudTrail has delivered one more hour
        put_object(world.target, obj, region=trail.spec.home_region)
    forget_calls(world)

    second = world.validate(trail, "--state", state, "--state-sha256", anchor_of(first))
    assert second.exit_code == first.exit_code == 0
    assert gets(world) == {f"{o.ref.bucket}/{o.ref.key}" for o in new_hour}  # nothing else was read
    new_keys = {o.ref.key for o in new_hour}
    assert {r["key"] for r in second.records if r["kind"] in ("digest", "log") and not r.get("from_state", False)} == new_keys
    assert second.summary["from_state"]["digests"] == len(first.of("digest"))
    assert second.summary["from_state"]["logs"] == len(first.of("log"))
    assert "not anchored" not in second.stderr
    fresh = world.validate(trail)  # the same verdicts as a run with no state at all
    assert second.verdicts() == fresh.verdicts() and fresh.exit_code == 0


def test_a_digest_changed_since_the_first_run_is_detected(world, tmp_path):
    state = str(tmp_path / "trail.state")
    trail = world.deploy()
    first = world.validate(trail, "--state", state)
    assert first.exit_code == 0
    victim = T.digest_at(trail, "eu-west-1", 1)
    T.modify_digest(trail, victim.ref)  # new bytes, the old signature
    put_object(world.target, victim, region=trail.spec.home_region)
    forget_calls(world)

    second = world.validate(trail, "--state", state, "--state-sha256", anchor_of(first))
    assert second.exit_code == 1
    rec = second.by_key(victim.ref.key)
    assert (rec["status"], rec["reason"], rec.get("from_state", False)) == ("invalid", "signature_mismatch", False)
    assert "changed since the state recorded it valid" in rec["message"] and "ETag" in rec["message"]
    assert gets(world) == {f"{victim.ref.bucket}/{victim.ref.key}"}
    assert set(second.problems()) == {("digest", "invalid", "signature_mismatch")} | (
        {("log", "unverifiable", "not_covered")} if second.of("log", "unverifiable") else set())


def test_a_log_rewritten_with_other_encryption_is_fetched_again(world, tmp_path):
    state = str(tmp_path / "trail.state")
    trail = world.deploy(kms_key_arn="create", bucket_default_key="create")
    first = world.validate(trail, "--state", state)
    assert first.exit_code == 0, first.stderr
    victim = T.log_at(trail, "us-east-1", 1)
    T.reencrypt(trail, victim.ref)  # same bytes, under the bucket's default key: a new last-modified
    time.sleep(1.1)  # S3 stamps writes to the second: CloudTrail's write was long before the attacker's
    put_object(world.target, victim, region=trail.spec.home_region)
    forget_calls(world)
    second = world.validate(trail, "--state", state)
    rec = second.by_key(victim.ref.key)
    assert (rec["status"], rec["reason"]) == ("warning", "unexpected_encryption") and not rec.get("from_state", False)
    assert gets(world) == {f"{victim.ref.bucket}/{victim.ref.key}"} and second.exit_code == 3


def test_recheck_reads_and_hashes_everything_again(world, tmp_path):
    state = str(tmp_path / "trail.state")
    trail = world.deploy()
    first = world.validate(trail, "--state", state)
    everything = gets(world)
    forget_calls(world)
    again = world.validate(trail, "--state", state, "--recheck")
    assert again.exit_code == first.exit_code == 0
    assert gets(world) == everything and len(everything) == len(trail.objects)
    assert again.summary["from_state"] == {"digests": 0, "logs": 0}


def test_a_state_file_changed_behind_the_tools_back_is_refused(world, tmp_path):
    state = tmp_path / "trail.state"
    trail = world.deploy(("modify-log:us-east-1:1",))
    first = world.validate(trail, "--state", str(state))
    assert first.exit_code == 1
    with sqlite3.connect(state) as db:  # hide the tampered log: mark it valid
        assert db.execute("UPDATE objects SET status = 'valid', reason = NULL WHERE status = 'invalid'").rowcount
    refused = world.validate(trail, "--state", str(state))
    assert refused.exit_code == 2 and refused.summary is None
    assert "changed behind the tool's back" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    anchored = world.validate(trail, "--state", str(state), "--state-sha256", anchor_of(first))
    assert anchored.exit_code == 2 and "not to --state-sha256" in anchored.stderr


def test_another_trails_state_is_refused(world, tmp_path):
    state = str(tmp_path / "trail.state")
    one = world.deploy()
    other = world.deploy()
    assert world.validate(one, "--state", state).exit_code == 0
    before = file_sha256(state)
    refused = world.validate(other, "--state", state)
    assert refused.exit_code == 2 and "belongs to another trail" in refused.stderr
    assert file_sha256(state) == before


def test_an_interrupted_run_leaves_the_state_as_it_was(world, tmp_path, ctvalidate_bin):
    state = str(tmp_path / "trail.state")
    trail, new_hour = deploy_all_but_last_hour(world)
    first = world.validate(trail, "--state", state)
    anchor = anchor_of(first)
    for obj in new_hour:
        put_object(world.target, obj, region=trail.spec.home_region)
    world.state.faults.append(Fault("delay", "", times=-1, delay=0.5))  # every object read is slow
    forget_calls(world)
    proc = subprocess.Popen([ctvalidate_bin, "validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint,
                             "--workers", "1", "--state", state, "--recheck", "--output", "json"], env=_clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_calls(world, proc, "GetObject")
    # while it runs, a second run on the same state is refused
    busy = run_cli(["validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint, "--output", "json",
                    "--state", state])
    assert busy.exit_code == 2 and "in use by another run" in busy.stderr, (proc.poll(), busy.stderr)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "unchanged" in err
    assert file_sha256(state) == anchor
    world.state.faults.clear()
    forget_calls(world)
    after = world.validate(trail, "--state", state, "--state-sha256", anchor)
    assert after.exit_code == 0
    assert gets(world) == {f"{o.ref.bucket}/{o.ref.key}" for o in new_hour}


def test_a_digest_deleted_with_its_logs_is_caught_in_full(world, tmp_path):
    state = str(tmp_path / "trail.state")
    trail = world.deploy()
    assert world.validate(trail, "--state", state).exit_code == 0
    victim = T.digest_at(trail, "us-east-1", 1)
    logs = [e["s3Object"] for e in trail.digest_doc(victim.ref)["logFiles"]]
    s3 = world.client("s3")
    for key in [victim.ref.key, *logs]:
        s3.delete_object(Bucket=trail.spec.bucket, Key=key)
    forget_calls(world)
    run = world.validate(trail, "--state", state)
    assert run.exit_code == 1
    assert gets(world) == {f"{trail.spec.bucket}/{victim.ref.key}"}  # the pointer to it, followed as always
    assert run.by_key(victim.ref.key)["status"] == "missing"
    for key in logs:
        rec = run.by_key(key)
        assert (rec["status"], rec["reason"]) == ("missing", "not_found") and "vanished" in rec["message"]
