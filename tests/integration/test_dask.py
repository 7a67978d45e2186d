"""`--engine dask` on a distributed.LocalCluster (two worker processes) against the loopback S3 endpoint.

The workers are separate processes that read S3 through the proxy with their own credentials
(the cluster's environment, never the driver's), verify digests and hash logs; the driver links
the chains. Every run here is compared record for record with the local engine's run of the
same trail: an organization trail of several accounts and regions, tampered in some of them;
then the same with one worker killed while the run is in flight.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from validator.engines.cluster import local_cluster
from validator.synth.tamper import corrupt, delete, digest_at, inject_log, log_at, modify_log

from .awsproxy import Fault
from .conftest import ACCOUNT, Run, _clean_env

distributed = pytest.importorskip("distributed", reason="the Dask engine needs dask[distributed] "
                                                        "(pip install '.[dask]'; the test extra has it)")

pytestmark = pytest.mark.integration

ORG = "o-placeholder00"
MEMBERS = ("444455556666", "777788889999")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, loopback only; AWS settings from their own environment."""
    env = {k: v for k, v in _clean_env().items() if k.startswith("AWS_")}
    c = local_cluster(2, env=env)
    client = distributed.Client(c, set_as_default=False)
    try:
        yield c, client
    finally:
        client.close()
        c.close()


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


def _task_names(client, since: float) -> Counter:
    """Task kinds of the run (ctvalidate-check_digests-RUN-N), and `workers`: how many workers ran them."""
    ours = [t for t in client.get_task_stream(start=since) if str(t["key"]).startswith("ctvalidate-")]
    names = Counter(t["key"].split("-")[1] for t in ours)
    names["workers"] = len({t["worker"] for t in ours})
    return names


@pytest.mark.parametrize("tampered", [False, True], ids=["clean", "tampered"])
def test_org_trail_same_records_as_local(world, cluster, tampered):
    _, client = cluster
    trail = _org_trail(world, tampered)
    local = world.validate(trail)
    t0 = time.time()
    client.get_task_stream(start=t0)  # installs the scheduler's task-stream plugin, which records every client's tasks
    dask = world.validate(trail, "--engine", "dask", "--scheduler", client.scheduler.address)
    _same(local, dask)

    # the work ran on the cluster: digest and log partitions, on both workers
    tasks = _task_names(client, t0)
    assert tasks["check_digests"] >= len(REGIONS) * 3 and tasks["check_logs"] >= len(REGIONS) * 3, tasks
    assert tasks["workers"] == 2, tasks
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


def test_worker_killed_mid_run_every_record_once(world, cluster):
    """SIGKILL one worker process while it holds partitions: its tasks are recomputed, nothing lost or doubled."""
    c, client = cluster
    trail = _org_trail(world, tampered=True)
    local = world.validate(trail)
    # slow every object read so that the run lasts several seconds
    world.state.faults.append(Fault("delay", "/CloudTrail", method="GET", times=-1, delay=0.06))
    result: dict[str, Run] = {}
    runner = threading.Thread(target=lambda: result.setdefault("run", world.validate(
        trail, "--engine", "dask", "--scheduler", client.scheduler.address, "--workers", "2")))
    runner.start()
    victim = _busy_worker(client, timeout=60)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert runner.is_alive(), "the run finished before the kill: nothing was tested"
    runner.join(timeout=300)
    assert not runner.is_alive()
    assert time.monotonic() > killed_at
    assert victim not in client.scheduler_info()["workers"]  # really lost (the nanny starts a new one)
    world.state.faults.clear()

    dask = result["run"]
    _same(local, dask)
    keys = Counter(r["key"] for r in dask.records if r["kind"] in ("digest", "log") and r["key"])
    assert keys and max(keys.values()) == 1
    assert not dask.of(reason="worker_lost")
    client.wait_for_workers(2, timeout=60)


def _busy_worker(client, timeout: float) -> str:
    """A worker address that is processing one of the run's partitions right now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for addr, keys in client.processing().items():
            if any(str(k).startswith("ctvalidate-check_logs") for k in keys):
                return addr
        time.sleep(0.05)
    raise AssertionError("no worker picked up a partition")


def test_evidence_directory_on_the_cluster(world, cluster, tmp_path):
    """The workers read the evidence directory at the driver's path, and check its seal."""
    _, client = cluster
    trail = world.build(("modify-log:us-east-1:1",), org_id=ORG, accounts=(ACCOUNT, MEMBERS[0]), hours=3)
    path = tmp_path / "evidence"
    seal = trail.write_evidence(str(path))
    local = world.validate_evidence(trail, "--manifest-sha256", seal, path=path)
    dask = world.validate_evidence(trail, "--manifest-sha256", seal, "--engine", "dask", "--scheduler",
                                   client.scheduler.address, path=path)
    assert local.exit_code == 1
    _same(local, dask)


def test_unreachable_scheduler_is_a_configuration_error(world):
    trail = world.deploy(hours=2)
    run = world.validate(trail, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert run.exit_code == 2
    assert "Dask scheduler at tcp://127.0.0.1:9" in run.stderr
    assert run.stdout == ""


def test_workers_read_with_their_own_credentials(world):
    """Workers sign with the credentials of their own environment: the driver's are never shipped.

    One worker whose environment holds another access key: while the endpoint accepts that key the
    run is the local one; once the endpoint refuses it (the driver's key still accepted, so the
    driver lists everything), the run stops with exit 2 and says the worker's credentials were refused."""
    env = {k: v for k, v in _clean_env().items() if k.startswith("AWS_")}
    env["AWS_ACCESS_KEY_ID"] = "worker-own-key"
    c = local_cluster(1, env=env)
    try:
        trail = world.deploy(hours=2)
        local = world.validate(trail)
        dask = world.validate(trail, "--engine", "dask", "--scheduler", c.scheduler_address)
        _same(local, dask)
        world.state.rejected_access_keys.add("worker-own-key")
        refused = world.validate(trail, "--engine", "dask", "--scheduler", c.scheduler_address)
    finally:
        c.close()
    assert local.exit_code == 0
    assert refused.exit_code == 2
    assert "on a Dask worker: AWS refused the credentials" in refused.stderr
    assert not refused.of(status="valid")


def test_scheduler_without_dask_engine_is_a_usage_error(world):
    trail = world.deploy(hours=1)
    run = world.validate(trail, "--scheduler", "tcp://127.0.0.1:9")
    assert run.exit_code == 2 and "--scheduler goes with --engine dask" in run.stderr
