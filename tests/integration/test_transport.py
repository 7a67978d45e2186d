"""Outages are not verdicts: throttling, 5xx, bodies cut short and resets are retried, then unverifiable."""

from __future__ import annotations

import pytest

from .awsproxy import Fault

pytestmark = pytest.mark.integration


def _gets(world, key: str) -> int:
    return sum(1 for c in world.state.calls_of("GetObject") if c[3].endswith(key))


@pytest.mark.parametrize("kind", ["truncate", "reset"])
def test_broken_log_body_is_read_again(world, kind):
    """A body that breaks off mid-stream is a transport error; the whole read (and hash) restarts."""
    trail = world.deploy()
    log = trail.logs(region="us-east-1")[1].ref
    world.state.faults.append(Fault(kind, log.key, times=1))
    run = world.validate(trail)
    assert run.exit_code == 0, run.stdout
    assert run.by_key(log.key)["status"] == "valid"
    assert _gets(world, log.key) >= 2


def test_throttled_read_is_retried(world):
    """SlowDown is retried by botocore (adaptive mode). The adaptive client then slows itself down for a
    while, so the throttled object is the last one read, to keep the test short."""
    trail = world.deploy()
    last = trail.logs(region="us-east-1")[-1].ref
    world.state.faults.append(Fault("throttle", last.key, times=1))
    run = world.validate(trail)
    assert run.exit_code == 0, run.stdout
    assert run.by_key(last.key)["status"] == "valid"
    assert _gets(world, last.key) == 2


def test_persistent_server_errors_make_a_log_unverifiable(world, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries off: the pipeline's own still apply
    trail = world.deploy()
    log = trail.logs(region="eu-west-1")[0].ref
    world.state.faults.append(Fault("error500", log.key, times=-1))
    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    rec = run.by_key(log.key)
    assert rec["status"] == "unverifiable"
    assert run.problems() == {("log", "unverifiable", rec["reason"]): 1}
