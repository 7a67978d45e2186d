"""Ctrl-C on a live run: the real process, a real SIGINT, mid-way through a slowed-down bucket."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from .awsproxy import Fault
from .conftest import _clean_env, wait_for_calls

pytestmark = pytest.mark.integration


def _interrupt_mid_run(world, ctvalidate_bin, *extra: str) -> tuple[int, str, str]:
    trail = world.deploy()
    world.state.faults.append(Fault("delay", "", times=-1, delay=0.4))  # every object read is slow
    proc = subprocess.Popen([ctvalidate_bin, "validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint,
                             "--workers", "2", *extra], env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_calls(world, proc, "GetObject", 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    total = len(trail.digests()) + len(trail.logs())
    assert len(world.state.calls_of("GetObject")) < total, "the run was not interrupted mid-way"
    return proc.returncode, out, err


@pytest.mark.timeout(120)
def test_ctrl_c_prints_the_partial_summary_and_exits_130(world, ctvalidate_bin):
    code, out, err = _interrupt_mid_run(world, ctvalidate_bin, "--verbose")
    assert code == 130, err
    assert "Traceback" not in err
    assert "Results requested for" in out
    assert "interrupted" in out.lower() and "partial" in out


@pytest.mark.timeout(120)
def test_ctrl_c_in_json_mode_ends_with_a_summary_that_says_so(world, ctvalidate_bin):
    code, out, err = _interrupt_mid_run(world, ctvalidate_bin, "--output", "json")
    assert code == 130, err
    assert "Traceback" not in err
    docs = [json.loads(line) for line in out.splitlines()]  # nothing but whole JSON lines, even when cut short
    summary = docs[-1]
    assert summary["kind"] == "summary" and summary["interrupted"] is True and summary["exit_code"] == 130
    assert all(d["kind"] != "summary" for d in docs[:-1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("operation", ["DescribeTrails", "ListPublicKeys"])
def test_ctrl_c_before_the_first_object_is_130_too(world, ctvalidate_bin, operation):
    """Interrupted while the run is still being set up (a slow CloudTrail call): 130 and an empty summary,
    not click's 'Aborted!' with exit 1 (which would read as an integrity failure)."""
    trail = world.deploy()
    world.state.faults.append(Fault("delay", "", operation=operation, times=-1, delay=5))
    proc = subprocess.Popen([ctvalidate_bin, "validate", "--trail-arn", trail.arn, "--endpoint-url", world.endpoint,
                             "--output", "json"], env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_calls(world, proc, operation)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "interrupted" in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["kind"] == "summary" and summary["interrupted"] is True and summary["exit_code"] == 130


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["validate", "acquire"])
def test_ctrl_c_does_not_wait_for_stalled_reads(world, ctvalidate_bin, tmp_path, command):
    """Every read stalls far longer than the test allows: after SIGINT the process still ends at once
    (130, the partial summary or the acquire notice), instead of joining worker threads stuck in requests."""
    trail = world.deploy()
    world.state.faults.append(Fault("delay", "", times=-1, delay=600))
    args = [ctvalidate_bin, command, "--trail-arn", trail.arn, "--endpoint-url", world.endpoint, "--workers", "2"]
    if command == "acquire":
        args.append(str(tmp_path / "evidence"))
    proc = subprocess.Popen(args, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_calls(world, proc, "GetObject", 2)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)  # a hang would be 600 s per stalled read
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("still running 30 s after Ctrl-C") from None
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    if command == "validate":
        assert "Results requested for" in out and "Interrupted" in out
    else:
        assert "interrupted" in err and not (tmp_path / "evidence" / "manifest.jsonl").exists()
