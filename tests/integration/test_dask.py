"""`--engine dask` on a Dask cluster of separate processes (`dask scheduler`, two `dask worker`) against the
loopback S3 endpoint, through the installed console script.

Each worker has its own access key in its own environment, and the proxy counts object GETs per key:
the workers read S3 themselves with their own credentials (the driver's are never shipped), verify
digests and hash logs; the driver lists and links the chains. Every run here is compared record for
record with the local engine's run of the same trail: an organization trail of several accounts and
regions, tampered in some of them; then the same with one worker killed while the run is in flight.

Nothing here imports distributed into the pytest process (the cluster, its clients and the CLI are
child processes): it would grow this process, and the peak RSS a child inherits at fork with it,
which tests/unit/test_hostile.py measures of its own children.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from validator.synth.tamper import corrupt, delete, digest_at, inject_log, log_at, modify_log

from .awsproxy import Fault
from .conftest import ACCOUNT, Run, _clean_env, _free_port, _parse_json_lines

if importlib.util.find_spec("distributed") is None:
    pytest.skip("the Dask engine needs dask[distributed] (pip install '.[dask]'; the test extra has it)",
                allow_module_level=True)

pytestmark = pytest.mark.integration

ORG = "o-placeholder00"
MEMBERS = ("444455556666", "777788889999")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
BIN = Path(sys.executable).parent
WORKER_KEYS = ("worker-key-a", "worker-key-b")
DRIVER_KEY = "testing"  # conftest's credentials: the CLI's and the local runs'
START_TIMEOUT = 90


@dataclass
class Cluster:
    """A scheduler and one worker process per access key, each with its own AWS environment."""

    address: str
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def stop(self) -> None:
        for p in [*self.workers.values(), self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers.values(), self.scheduler]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _ask(address: str, code: str) -> str:
    """Run `code` with a distributed Client `c` of the cluster in a child process; its stdout."""
    prog = f"from distributed import Client\nc = Client({address!r}, timeout=30)\n{code}\nc.close()\n"
    return subprocess.run([sys.executable, "-c", prog], env=_clean_env(), capture_output=True, text=True,
                          timeout=120, check=True).stdout


def start_cluster(tmp: Path, keys: tuple[str, ...] = WORKER_KEYS) -> Cluster:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp / "dask.log", "ab")
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                                 env=_clean_env(), stdout=log, stderr=subprocess.STDOUT)
    cluster = Cluster(address, scheduler)
    for key in keys:
        env = _clean_env() | {"AWS_ACCESS_KEY_ID": key}  # the worker's own credentials
        cluster.workers[key] = subprocess.Popen(
            [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
             "--no-dashboard", "--name", key, "--death-timeout", str(START_TIMEOUT)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _ask(address, f"c.wait_for_workers({len(keys)}, timeout={START_TIMEOUT})")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        cluster.stop()
        pytest.fail(f"the Dask cluster did not start: {(tmp / 'dask.log').read_text()[-3000:]}")
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield c
    finally:
        c.stop()


def dask_args(world, trail, address: str, *extra: str) -> list[str]:
    return [str(BIN / "ctvalidate"), "validate", "--trail-arn", trail.arn, "--output", "json", "--endpoint-url",
            world.endpoint, "--workers", "8", "--engine", "dask", "--scheduler", address, *extra]


def finish(proc: subprocess.Popen) -> Run:
    out, err = proc.communicate(timeout=600)
    run = Run(proc.returncode, out, err)
    run.records, run.summary = _parse_json_lines(out)
    if run.exit_code != 2:
        assert run.summary is not None and run.summary["exit_code"] == run.exit_code, err
    return run


def validate_dask(world, trail, address: str, *extra: str) -> Run:
    """The console script in a child process, as a user runs it (driver credentials from conftest)."""
    args = dask_args(world, trail, address, *extra)
    return finish(subprocess.Popen(args, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True))


def _tamper_members(trail) -> None:
    """Tampering in the member accounts too (the named operations reach only the trail's own account)."""
    a, b = MEMBERS
    modify_log(trail, log_at(trail, "eu-west-1", 2, a).ref)
    delete(trail, log_at(trail, "ap-southeast-2", 1, a).ref)
    delete(trail, digest_at(trail, "us-east-1", 1, b).ref)
    corrupt(trail, digest_at(trail, "eu-west-1", 2, b).ref)
    inject_log(trail, "ap-southeast-2", trail.spec.start + timedelta(hours=2, minutes=30), b)


def _org_trail(world, tampered: bool):
    return world.deploy(("modify-log:us-east-1:1", "chain-hash:eu-west-1:2") if tampered else (),
                        mutate=_tamper_members if tampered else None, org_id=ORG,
                        accounts=(ACCOUNT, *MEMBERS), regions=REGIONS, hours=5, kms_key_arn="create")


def _same(local: Run, dask: Run) -> None:
    """Same records in the same order, same exit code, same summary but for the wall-clock window end."""
    assert dask.exit_code == local.exit_code, dask.stderr
    assert dask.records == local.records
    strip = lambda s: {k: v for k, v in s.items() if k != "requested"}  # noqa: E731
    assert strip(dask.summary) == strip(local.summary)


def _reads(world) -> dict[str, int]:
    with world.state.lock:
        return dict(world.state.object_gets)


@pytest.mark.parametrize("tampered", [False, True], ids=["clean", "tampered"])
def test_org_trail_same_records_as_local(world, cluster, tampered):
    trail = _org_trail(world, tampered)
    local = world.validate(trail)
    world.state.object_gets.clear()
    dask = validate_dask(world, trail, cluster.address)
    _same(local, dask)

    # the workers read the objects, each with its own credentials; the driver only what a pointer names
    reads = _reads(world)
    objects = len(dask.of("digest")) + len(dask.of("log"))
    assert all(reads.get(k, 0) > 0 for k in WORKER_KEYS), reads
    assert sum(reads.get(k, 0) for k in WORKER_KEYS) >= objects - 10, (reads, objects)
    assert reads.get(DRIVER_KEY, 0) <= 5, reads
    # every member account and region discovered and validated in one run, with its own totals
    assert {(r["account_id"], r["region"]) for r in dask.of("digest") if r["key"]} == {
        (a, r) for a in (ACCOUNT, *MEMBERS) for r in REGIONS}
    assert set(dask.summary["accounts"]) == {ACCOUNT, *MEMBERS}
    for acct, totals in dask.summary["accounts"].items():
        assert totals["digests"] == dict(Counter(r["status"] for r in dask.of("digest") if r["account_id"] == acct))
    keys = [r["key"] for r in dask.records if r["kind"] in ("digest", "log") and r["key"]]
    assert len(keys) == len(set(keys))
    if not tampered:
        assert dask.exit_code == 0
        assert dask.summary["digests"] == {"valid": len(trail.digests())}
        assert dask.summary["logs"] == {"valid": len(trail.logs())}
    else:
        assert dask.exit_code == 1
        problems = dask.problems()
        for expected in [("log", "invalid", "hash_mismatch"), ("log", "missing", "not_found"),
                         ("digest", "missing", "not_found"), ("digest", "invalid", "invalid_format"),
                         ("digest", "invalid", "chain_hash_mismatch"), ("log", "invalid", "unreferenced")]:
            assert problems[expected] >= 1, (expected, problems)
        assert problems[("log", "invalid", "hash_mismatch")] == 2  # one in the trail's account, one in a member's
        per = dask.summary["accounts"]
        assert per[MEMBERS[0]]["logs"].get("invalid") == 1 and per[MEMBERS[0]]["logs"].get("missing") == 1
        assert per[MEMBERS[1]]["digests"].get("missing") == 1 and per[MEMBERS[1]]["digests"].get("invalid") == 1


def test_worker_killed_mid_run_every_record_once(world, tmp_path):
    """SIGKILL one worker process (no nanny: it stays dead) while it reads: nothing lost or doubled."""
    own = start_cluster(tmp_path)
    try:
        trail = _org_trail(world, tampered=True)
        local = world.validate(trail)
        world.state.object_gets.clear()
        # slow every object read so that the run lasts several seconds
        world.state.faults.append(Fault("delay", "/CloudTrail", method="GET", times=-1, delay=0.06))
        proc = subprocess.Popen(dask_args(world, trail, own.address, "--workers", "2"), env=_clean_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim, survivor = WORKER_KEYS
        _wait_until(lambda: _reads(world).get(victim, 0) >= 5 and _reads(world).get(survivor, 0) >= 1, 120)
        before = _reads(world).get(victim, 0)
        _wait_until(lambda: _reads(world).get(victim, 0) > before, 30)  # a read in flight: mid-partition
        os.kill(own.workers[victim].pid, signal.SIGKILL)
        own.workers[victim].wait(10)
        at_kill = _reads(world)
        assert proc.poll() is None, "the run finished before the kill: nothing was tested"
        dask = finish(proc)
        after = _reads(world)
    finally:
        world.state.faults.clear()
        own.stop()
    assert after.get(victim, 0) <= at_kill.get(victim, 0) + 1  # dead: nothing more from it
    assert after[survivor] > at_kill[survivor]  # the rest, and the lost partitions, on the survivor
    _same(local, dask)
    keys = Counter(r["key"] for r in dask.records if r["kind"] in ("digest", "log") and r["key"])
    assert keys and max(keys.values()) == 1
    assert not dask.of(reason="worker_lost")


def _wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run to reach the workers")
        time.sleep(0.01)


def test_evidence_directory_on_the_cluster(world, cluster, tmp_path):
    """The workers read the evidence directory at the driver's path, and check its seal."""
    trail = world.build(("modify-log:us-east-1:1",), org_id=ORG, accounts=(ACCOUNT, MEMBERS[0]), hours=3)
    path = tmp_path / "evidence"
    seal = trail.write_evidence(str(path))
    local = world.validate_evidence(trail, "--manifest-sha256", seal, path=path)
    proc = subprocess.Popen([str(BIN / "ctvalidate"), "validate", "--trail-arn", trail.arn, "--output", "json",
                             "--source", str(path), "--manifest-sha256", seal, "--engine", "dask", "--scheduler",
                             cluster.address], env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    dask = finish(proc)
    assert local.exit_code == 1
    _same(local, dask)


def test_unreachable_scheduler_is_a_configuration_error(world):
    trail = world.deploy(hours=2)
    run = validate_dask(world, trail, f"tcp://127.0.0.1:{_free_port()}")
    assert run.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in run.stderr
    assert run.stdout == ""


def test_refused_worker_credentials_stop_the_run(world, cluster):
    """The endpoint accepts the driver's key (it lists everything) but refuses the workers' own keys."""
    trail = world.deploy(hours=2)
    world.state.rejected_access_keys.update(WORKER_KEYS)
    run = validate_dask(world, trail, cluster.address)
    assert run.exit_code == 2
    assert "on a Dask worker: AWS refused the credentials" in run.stderr
    assert run.summary is None and not run.of(status="valid")


def test_scheduler_without_dask_engine_is_a_usage_error(world):
    trail = world.deploy(hours=1)
    run = world.validate(trail, "--scheduler", "tcp://127.0.0.1:9")
    assert run.exit_code == 2 and "--scheduler goes with --engine dask" in run.stderr


def test_versioned_bucket_history_same_as_local(world, cluster):
    """A deleted digest (recovered from its surviving version on a worker) and an overwritten log (each of
    its versions judged on a worker): the same records, versions and verdicts as the local engine's."""
    import gzip

    import orjson
    trail = world.deploy(versioning=True)
    s3 = world.client("s3")
    digest = trail.digests(region="eu-west-1")[1]
    log = trail.logs(region="us-east-1")[2]
    doc = orjson.loads(gzip.decompress(log.body))
    doc["Records"][0]["sourceIPAddress"] = "203.0.113.66"
    s3.delete_object(Bucket=digest.ref.bucket, Key=digest.ref.key)
    s3.put_object(Bucket=log.ref.bucket, Key=log.ref.key, Body=gzip.compress(orjson.dumps(doc), mtime=0),
                  ServerSideEncryption="AES256")
    local = world.validate(trail)
    world.state.object_gets.clear()
    dask = validate_dask(world, trail, cluster.address)
    _same(local, dask)
    assert dask.by_key(digest.ref.key)["deleted"] and dask.by_key(log.ref.key)["rewritten"] is True
    assert [v["status"] for v in dask.by_key(log.ref.key)["versions"]] == ["invalid", "valid"]
    assert all(_reads(world).get(k, 0) > 0 for k in WORKER_KEYS)


def test_object_lock_retention_same_as_local(world, cluster):
    """Retention headers are seen by the workers' GETs and reported by the driver, as locally."""
    trail = world.deploy(object_lock={"Mode": "COMPLIANCE", "Days": 365}, regions=("us-east-1",))
    local = world.validate(trail)
    dask = validate_dask(world, trail, cluster.address)
    _same(local, dask)
    assert dask.records and all(r.get("immutable") for r in dask.records if r["kind"] in ("digest", "log"))



def test_without_a_scheduler_a_local_cluster_is_started(world, tmp_path):
    """`--engine dask` alone: the CLI starts a LocalCluster of worker processes for the run, and stops it."""
    trail = world.build(("delete-log:us-east-1:1",), org_id=ORG, accounts=(ACCOUNT, MEMBERS[0]), hours=3)
    path = tmp_path / "evidence"
    trail.write_evidence(str(path))
    local = world.validate_evidence(trail, path=path)
    env = {k: v for k, v in _clean_env().items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.Popen([str(BIN / "ctvalidate"), "validate", "--trail-arn", trail.arn, "--output", "json",
                             "--source", str(path), "--engine", "dask"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    dask = finish(proc)
    assert local.exit_code == 1
    _same(local, dask)


def test_the_test_process_never_imported_distributed():
    """The runs above used the cluster and the CLI as child processes only (see the module docstring)."""
    assert "distributed" not in sys.modules
