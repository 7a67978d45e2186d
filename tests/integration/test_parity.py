"""Over S3 the verdicts are those over an evidence directory of the same trail, for every reason code.

Each case deploys one tampered synthetic trail into the endpoint, validates it
live (`--endpoint-url`) and from an evidence directory written from the same
in-memory trail, and requires the same records (status, reason, bucket, key,
the listing digest), the same gaps, the same exit code, and the expected
problems, counted exactly.
"""

from __future__ import annotations

from collections import Counter

import pytest

pytestmark = pytest.mark.integration

D_INVALID, D_MISSING, D_WARNING = ("digest", "invalid"), ("digest", "missing"), ("digest", "warning")
L_INVALID, L_MISSING = ("log", "invalid"), ("log", "missing")
NOT_COVERED = ("log", "unverifiable", "not_covered")

# (tamper, spec overrides, extra CLI args, the primary problem, exit code)
CASES = [
    ("modify-log:us-east-1:1", {}, (), (*L_INVALID, "hash_mismatch"), 1),
    ("delete-log:us-east-1:1", {}, (), (*L_MISSING, "not_found"), 1),
    ("truncate-log:eu-west-1:0", {}, (), (*L_INVALID, "invalid_format"), 1),
    ("trailing-log:eu-west-1:2", {}, (), (*L_INVALID, "trailing_data"), 1),
    ("inject-log:us-east-1:2", {}, (), (*L_INVALID, "unreferenced"), 1),
    ("inject-log:us-east-1:4", {}, (), ("log", "pending", "awaiting_digest"), 0),
    ("modify-digest:us-east-1:1", {}, (), (*D_INVALID, "signature_mismatch"), 1),
    ("strip-metadata:us-east-1:1", {}, (), (*D_INVALID, "no_signature"), 1),
    ("replay-digest:us-east-1:1", {}, (), (*D_INVALID, "moved"), 1),
    ("delete-digest:us-east-1:1", {}, (), (*D_MISSING, "not_found"), 1),
    ("corrupt-digest:eu-west-1:1", {}, (), (*D_INVALID, "invalid_format"), 1),
    ("unknown-key:us-east-1:2", {}, (), (*D_INVALID, "unknown_public_key"), 1),
    ("algorithm:us-east-1:2", {}, (), (*D_INVALID, "unsupported_algorithm"), 1),
    ("chain-hash:us-east-1:2", {}, (), (*D_INVALID, "chain_hash_mismatch"), 1),
    ("chain-signature:us-east-1:2", {}, (), (*D_INVALID, "chain_signature_mismatch"), 1),
    ("delete-tail:1.5", {}, (), (*D_MISSING, "truncated"), 1),
    ("reencrypt-digest:us-east-1:1", {}, (), (*D_WARNING, "not_sse_s3"), 3),
    ("reencrypt-log:us-east-1:1", {"bucket_default_key": "create"}, (), ("log", "warning", "unexpected_encryption"), 3),
    (None, {}, ("--expect-regions", "us-east-1,eu-west-1,ap-south-1"), (*D_MISSING, "region_missing"), 1),
    (None, {"org_id": "o-placeholder00", "accounts": ("111122223333", "444455556666")},
     ("--expect-accounts", "111122223333,444455556666,777788889999"), (*D_MISSING, "account_missing"), 1),
]


def _ids(case: tuple) -> str:
    return case[0] or case[3][2]


@pytest.mark.parametrize("tamper,overrides,args,primary,exit_code", CASES, ids=[_ids(c) for c in CASES])
def test_same_verdicts_as_evidence(world, tamper, overrides, args, primary, exit_code):
    spec = {"kms_key_arn": "create", **overrides}
    trail = world.deploy((tamper,) if tamper else (), **spec)
    live = world.validate(trail, *args)
    offline = world.validate_evidence(trail, *args)

    assert live.exit_code == exit_code, live.stdout + live.stderr
    assert offline.exit_code == exit_code
    assert live.verdicts() == offline.verdicts()
    assert live.summary["digests"] == offline.summary["digests"]
    assert live.summary["logs"] == offline.summary["logs"]
    assert live.summary["trust"]["public_keys"] == "aws"
    assert offline.summary["trust"]["public_keys"] == "evidence"

    problems = live.problems()
    expected = 2 if primary[2] == "truncated" else 1  # a cut tail: one record per region's chain
    assert problems[primary] == expected, problems
    # everything else that is not valid follows from the primary problem: logs of an untrusted digest
    others = Counter({k: n for k, n in problems.items() if k != primary})
    assert set(others) <= {NOT_COVERED, ("log", "pending", "awaiting_digest")}, others


def test_clean_trail_every_object_valid(world):
    trail = world.deploy(kms_key_arn="create", bucket_default_key="create")
    run = world.validate(trail)
    assert run.exit_code == 0, run.stderr
    n_digests = len(trail.digests())
    n_logs = len(trail.logs())
    assert run.summary["digests"] == {"valid": n_digests}
    assert run.summary["logs"] == {"valid": n_logs}
    assert run.summary["gaps"] == 0
    assert {r["key"] for r in run.of("log")} == {o.ref.key for o in trail.logs()}
    assert {r["key"] for r in run.of("digest")} == {o.ref.key for o in trail.digests()}
    assert all(r["digest_key"] for r in run.of("log"))
    assert run.verdicts() == world.validate_evidence(trail).verdicts()


def test_two_deleted_digests_in_a_row(world):
    """The newer's key is known from its successor's pointer; the older's is not (key null, with its span)."""
    trail = world.deploy(("delete-digest:us-east-1:1:2",))
    live = world.validate(trail)
    assert live.exit_code == 1
    missing = live.of("digest", "missing", "not_found")
    assert len(missing) == 2
    assert sorted(r["key"] is None for r in missing) == [False, True]
    unknown = next(r for r in missing if r["key"] is None)
    assert unknown["start_time"] and unknown["end_time"]
    assert live.verdicts() == world.validate_evidence(trail).verdicts()


def test_gap_and_backfill_same_as_evidence(world):
    """A stop in logging is a gap; backfill digests form their own chain."""
    trail = world.deploy(stops=((2, 3),), backfill_hours=(0,), hours=5)
    live = world.validate(trail)
    offline = world.validate_evidence(trail)
    assert live.exit_code == 0, live.stdout
    gaps = live.of("gap")
    assert len(gaps) == 2  # one per region
    backfill = [r for r in live.of("digest") if r["backfill"]]
    assert len(backfill) == 2 and all(r["status"] == "valid" for r in backfill)
    assert live.verdicts() == offline.verdicts()
