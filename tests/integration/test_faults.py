"""Acceptance: every transport fault, injected against a clean trail, on one digest or one log file.

Each run ends with exit 0 (retried through, or the fault was harmless) or exit 3 with exactly the
affected objects `unverifiable` (the faulted object with `transport_error`; for a digest, also the log
files only it lists, `not_covered`), never exit 1, a traceback or a hang (pytest-timeout bounds each
run; the client's read timeout is shortened so that a stalled body ends in a second, not a minute).
"""

from __future__ import annotations

import pytest

from .awsproxy import Fault

pytestmark = pytest.mark.integration

#: faults that lose or damage the bytes: once, they are retried through; always, the object is unverifiable
DAMAGING = ["error500", "throttle", "reset", "delay", "truncate", "reset_body", "stall", "short_length", "corrupt"]
#: faults that only slow or pad the answer: the object verifies even when every read has them
HARMLESS = ["slow", "long_body"]
STALL = 30.0  # seconds a stalled answer sleeps: far longer than the client read timeout below
READ_TIMEOUT = "1"


@pytest.fixture
def faulty(world, monkeypatch):
    """A clean trail, a shortened client read timeout, and a function that injects one fault and validates."""
    monkeypatch.setenv("CTV_READ_TIMEOUT", READ_TIMEOUT)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # botocore retries once; the pipeline's own retries still apply
    trail = world.deploy()

    def run(kind: str, what: str, times: int):
        if what == "digest":
            obj = trail.digests(region="us-east-1")[1]
        else:
            obj = trail.logs(region="eu-west-1")[1]
        delay = STALL if kind in ("delay", "stall") else 0.0
        world.state.faults.append(Fault(kind, obj.ref.key, times=times, delay=delay))
        result = world.validate(trail)
        assert "Traceback" not in result.stderr, result.stderr
        assert world.state.faults_fired, "the fault never fired"
        return trail, obj, result

    return run


def _not_valid(run) -> dict[str, tuple[str, str]]:
    return {r["key"]: (r["status"], r["reason"]) for r in run.records
            if r["kind"] in ("digest", "log") and r["status"] != "valid"}


def _reads(world, key: str) -> int:
    return sum(1 for c in world.state.calls_of("GetObject") if c[3].endswith(key))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what", ["digest", "log"])
@pytest.mark.parametrize("kind", DAMAGING + HARMLESS)
def test_a_fault_once_is_retried_through(faulty, world, kind, what):
    trail, obj, run = faulty(kind, what, times=1)
    assert run.exit_code == 0, (run.stdout, run.stderr)
    assert run.by_key(obj.ref.key)["status"] == "valid"
    assert len(run.of("digest")) == len(trail.digests()) and len(run.of("log")) == len(trail.logs())
    if kind in DAMAGING:
        assert _reads(world, obj.ref.key) >= 2


@pytest.mark.timeout(180)
@pytest.mark.parametrize("what", ["digest", "log"])
@pytest.mark.parametrize("kind", DAMAGING)
def test_a_persistent_fault_makes_exactly_the_affected_objects_unverifiable(faulty, world, kind, what):
    trail, obj, run = faulty(kind, what, times=-1)
    assert run.exit_code == 3, (run.stdout, run.stderr)
    expected = {obj.ref.key: ("unverifiable", "transport_error")}
    if what == "digest":  # its log files lose their proof, and only they
        doc = trail.digest_doc(obj.ref)
        expected.update({lf["s3Object"]: ("unverifiable", "not_covered") for lf in doc["logFiles"]})
    assert _not_valid(run) == expected
    assert len(run.of("digest")) == len(trail.digests()) and len(run.of("log")) == len(trail.logs())
    assert run.of(kind="gap") == []
    assert _reads(world, obj.ref.key) >= 2  # retried before giving up


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what", ["digest", "log"])
@pytest.mark.parametrize("kind", HARMLESS)
def test_a_harmless_fault_on_every_read_still_verifies(faulty, kind, what):
    trail, obj, run = faulty(kind, what, times=-1)
    assert run.exit_code == 0, (run.stdout, run.stderr)
    assert run.by_key(obj.ref.key)["status"] == "valid"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["corrupt", "short_length"])
def test_a_damaged_kms_body_is_caught_by_its_stored_checksum(world, kind):
    """SSE-KMS ETags are no MD5, so there the ETag check is not made; an object stored with a checksum
    (x-amz-checksum-*) is checked by botocore instead, once the rest of the body has been read."""
    trail = world.deploy(kms_key_arn="create")
    obj = trail.logs(region="eu-west-1")[1]
    head = world.client("s3").head_object(Bucket=obj.ref.bucket, Key=obj.ref.key, ChecksumMode="ENABLED")
    if not any(k.startswith("Checksum") and k != "ChecksumType" for k in head):
        pytest.skip("this boto3 stores no checksum with the object")
    world.state.faults.append(Fault(kind, obj.ref.key, times=-1))
    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout
    assert _not_valid(run) == {obj.ref.key: ("unverifiable", "transport_error")}


# --- faults on listings and on the CloudTrail API -------------------------------------------------------
#
# What a run cannot do without (listing the trail's folders, the public keys, the bucket when none is
# given) ends, after botocore's retries, in one error line and exit 2; what only refines the verdicts
# (GetTrailStatus: the cut-tail check) is a warning and the run goes on.


def _error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("ctvalidate: error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["error500", "throttle", "reset"])
@pytest.mark.parametrize("operation", ["ListObjectsV2", "DescribeTrails", "GetTrailStatus", "ListPublicKeys"])
def test_a_failed_call_once_is_retried_through(world, operation, kind):
    trail = world.deploy()
    world.state.faults.append(Fault(kind, "", operation=operation, times=1))
    run = world.validate(trail)
    assert world.state.faults_fired
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr and "warning" not in run.stderr
    assert len(run.of("digest")) == len(trail.digests()) and len(run.of("log")) == len(trail.logs())


@pytest.mark.timeout(120)
def test_a_listing_page_that_keeps_failing_is_one_error_line(world, monkeypatch):
    """The second page of one region's digest listing fails every time: the run cannot know what it did
    not list, so it says which folder and exits 2 (the records before it are written)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy()
    folder = trail.digests(region="us-east-1")[0].ref.key.rsplit("/", 4)[0] + "/"
    world.state.faults.append(Fault("error500", folder, operation="ListObjectsV2", times=-1))
    run = world.validate(trail)
    assert run.exit_code == 2
    line = _error_line(run.stderr)
    assert "cannot list" in line and folder in line
    assert run.summary is None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["error500", "throttle"])
def test_list_public_keys_that_keeps_failing_is_one_error_line(world, monkeypatch, kind):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy()
    world.state.faults.append(Fault(kind, "", operation="ListPublicKeys", times=-1))
    run = world.validate(trail)
    assert run.exit_code == 2
    line = _error_line(run.stderr)
    assert "ListPublicKeys" in line and "--public-keys" in line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["error500", "throttle"])
def test_describe_trails_that_keeps_failing(world, monkeypatch, kind):
    """Without --s3-bucket there is nothing to validate: one line that says why. With it, the run goes
    on with a warning that encryption provenance is not checked."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy()
    world.state.faults.append(Fault(kind, "", operation="DescribeTrails", times=-1))
    run = world.validate(trail)
    assert run.exit_code == 2
    line = _error_line(run.stderr)
    assert "--s3-bucket" in line and "DescribeTrails" in line and ("Internal" in line or "Throttl" in line)
    given = world.validate(trail, "--s3-bucket", trail.spec.bucket)
    assert given.exit_code == 0, given.stderr
    assert "DescribeTrails" in given.stderr and "encryption provenance is not checked" in given.stderr
    assert len(given.of("log")) == len(trail.logs())


@pytest.mark.timeout(120)
def test_get_trail_status_that_keeps_failing_is_a_warning(world, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy()
    world.state.faults.append(Fault("error500", "", operation="GetTrailStatus", times=-1))
    run = world.validate(trail)
    assert run.exit_code == 0, run.stderr
    assert "GetTrailStatus" in run.stderr and "cut chain tail cannot be detected" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.timeout(180)
def test_acquire_under_a_persistent_fault_records_it_and_offline_says_the_same(world, monkeypatch, tmp_path):
    """An object that cannot be read at acquisition, even after retries, is recorded with its reason: the
    evidence is complete and sealed (exit 3), and offline it is the same `transport_error` as live."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy()
    log = trail.logs(region="us-east-1")[2]
    world.state.faults.append(Fault("reset_body", log.ref.key, times=-1))
    live = world.validate(trail)
    dest = tmp_path / "evidence"
    acq = world.acquire(trail, dest)
    assert acq.exit_code == 3, acq.stderr
    assert (dest / "manifest.jsonl").exists() and "Traceback" not in acq.stderr
    from .conftest import run_cli
    offline = run_cli(["validate", "--trail-arn", trail.arn, "--output", "json", "--source", str(dest)])
    assert offline.exit_code == live.exit_code == 3
    assert offline.verdicts() == live.verdicts()
    assert _not_valid(offline) == {log.ref.key: ("unverifiable", "transport_error")}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("what", ["digest", "log"])
def test_faults_in_a_versioned_bucket(world, monkeypatch, what):
    """With versioning on, the version listing's failures are retried, and an object that cannot be read is
    still exactly one unverifiable record (its versions are history, not a second verdict)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy(versioning=True)
    obj = trail.digests(region="eu-west-1")[2] if what == "digest" else trail.logs(region="us-east-1")[1]
    world.state.faults.append(Fault("error500", "", operation="ListObjectVersions", times=1))
    world.state.faults.append(Fault("corrupt", obj.ref.key, times=-1))
    run = world.validate(trail)
    assert run.exit_code == 3, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    expected = {obj.ref.key: ("unverifiable", "transport_error")}
    if what == "digest":
        expected.update({lf["s3Object"]: ("unverifiable", "not_covered")
                         for lf in trail.digest_doc(obj.ref)["logFiles"]})
    assert _not_valid(run) == expected
    assert len(run.of("digest")) == len(trail.digests()) and len(run.of("log")) == len(trail.logs())
    assert {f[1] for f in world.state.faults_fired} >= {"ListObjectVersions", "GET"}


@pytest.mark.timeout(120)
def test_a_version_listing_that_keeps_failing_is_a_warning(world, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    trail = world.deploy(versioning=True)
    world.state.faults.append(Fault("error500", "", operation="ListObjectVersions", times=-1))
    run = world.validate(trail)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "warning" in run.stderr and "version" in run.stderr.lower() and "Traceback" not in run.stderr
    assert len(run.of("log")) == len(trail.logs())
