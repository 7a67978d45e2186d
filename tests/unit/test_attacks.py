"""One attack per test, through the whole pipeline over an in-memory trail (no storage, no server).

Each test tampers with a fresh synthetic trail and asserts that exactly the
affected objects are flagged, with the contract's status and reason.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import run_memory
from validator.model import ObjectRef, parse_key
from validator.synth import generate
from validator.synth import tamper as T

R1 = "us-east-1"


@pytest.fixture
def trail():
    return generate()


def logs_of(trail, digest_obj):
    return {e["s3Object"] for e in trail.digest_doc(digest_obj.ref)["logFiles"]}


def test_clean_trail_counts_every_object_once(trail):
    run = run_memory(trail)
    assert run.exit_code == 0
    assert run.problems() == []
    assert len(run.digests) == len(trail.digests(backfill=None)) == 12
    assert len(run.logs) == len(trail.logs())
    keys = [r.key for r in run.records if r.kind in ("digest", "log")]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("op,reason,status", [
    (T.modify_log, "hash_mismatch", "invalid"),
    (T.delete, "not_found", "missing"),
    (T.truncate, "invalid_format", "invalid"),
    (T.append_trailing, "trailing_data", "invalid"),
])
def test_log_attacks_flag_only_that_log(trail, op, reason, status):
    victim = T.log_at(trail, R1, 2)
    op(trail, victim.ref)
    run = run_memory(trail)
    assert run.problems() == [("log", status, reason, victim.ref.key)]
    assert run.exit_code == 1


def test_garbage_after_gzip_stream_is_trailing_data_even_when_not_gzip(trail):
    victim = T.log_at(trail, R1, 0)
    T.append_trailing(trail, victim.ref, b"\x00" * 10)
    assert run_memory(trail).problems() == [("log", "invalid", "trailing_data", victim.ref.key)]


@pytest.mark.parametrize("op,reason", [
    (T.modify_digest, "signature_mismatch"),
    (T.strip_metadata, "no_signature"),
    (T.corrupt, "invalid_format"),
    (T.unknown_key, "unknown_public_key"),
    (T.wrong_algorithm, "unsupported_algorithm"),
])
def test_digest_attacks(trail, op, reason):
    victim = T.digest_at(trail, R1, 2)
    listed = logs_of(trail, victim)
    op(trail, victim.ref)
    run = run_memory(trail)
    bad_digests = [(r.verdict.status, r.verdict.reason, r.key) for r in run.digests if r.verdict.status != "valid"]
    assert bad_digests == [("invalid", reason, victim.ref.key)]
    # the invalid digest covers nothing: its log files are unverifiable, not silently valid
    assert {r.key for r in run.logs if r.verdict.reason == "not_covered"} == listed
    assert all(r.verdict.status == "valid" for r in run.logs if r.key not in listed)
    assert run.exit_code == 1


def test_signed_algorithm_field_must_be_sha256withrsa(trail):
    victim = T.digest_at(trail, R1, 1)
    T.resign(trail, victim.ref, lambda d: d.update(digestSignatureAlgorithm="SHA1withRSA"))
    run = run_memory(trail)
    assert [(r.verdict.reason, r.key) for r in run.digests if r.verdict.status != "valid"] == [
        ("unsupported_algorithm", victim.ref.key)]


def test_replayed_digest_is_moved(trail):
    src, dst = T.digest_at(trail, R1, 2), T.digest_at(trail, R1, 3)
    T.replay_digest(trail, src.ref, dst.ref)
    run = run_memory(trail)
    assert [(r.verdict.reason, r.key) for r in run.digests if r.verdict.status != "valid"] == [("moved", dst.ref.key)]


def test_digest_from_another_trail_in_its_place_is_moved(trail):
    victim = T.digest_at(trail, R1, 4)
    T.resign(trail, victim.ref, lambda d: d.update(digestS3Object=d["digestS3Object"].replace("demo-trail", "other")),
             cascade=False)
    run = run_memory(trail)
    assert ("digest", "invalid", "moved", victim.ref.key) in run.problems()


@pytest.mark.parametrize("op,reason", [(T.chain_hash, "chain_hash_mismatch"),
                                       (T.chain_signature, "chain_signature_mismatch")])
def test_chain_link_mismatch_condemns_the_previous_digest(trail, op, reason):
    """Re-signed with a test key: the newer digest is valid, but the link to the one before it breaks."""
    newer, previous = T.digest_at(trail, R1, 3), T.digest_at(trail, R1, 2)
    op(trail, newer.ref)
    run = run_memory(trail)
    assert [(r.verdict.reason, r.key) for r in run.digests if r.verdict.status != "valid"] == [
        (reason, previous.ref.key)]
    assert run.exit_code == 1


def test_deleted_digest_is_missing_with_its_key(trail):
    victim = T.digest_at(trail, R1, 2)
    listed = logs_of(trail, victim)
    T.delete(trail, victim.ref)
    run = run_memory(trail)
    missing = [r for r in run.digests if r.verdict.status == "missing"]
    assert [(m.key, m.verdict.reason) for m in missing] == [(victim.ref.key, "not_found")]
    assert {r.key for r in run.logs if r.verdict.reason == "not_covered"} == listed
    assert run.exit_code == 1


def test_two_deleted_digests_newer_by_key_older_by_span(trail):
    d2, d3, d1 = T.digest_at(trail, R1, 2), T.digest_at(trail, R1, 3), T.digest_at(trail, R1, 1)
    T.delete(trail, d2.ref)
    T.delete(trail, d3.ref)
    run = run_memory(trail)
    missing = sorted((r for r in run.digests if r.verdict.status == "missing"), key=lambda r: r.end_time)
    assert len(missing) == 2
    older, newer = missing
    assert newer.key == d3.ref.key and newer.verdict.reason == "not_found"
    assert older.key is None and older.verdict.reason == "not_found"
    d1_end = parse_key(d1.ref.key).time
    d3_end = parse_key(d3.ref.key).time
    # the unknown one spans from the last surviving digest to where the known missing one begins
    assert older.start_time == d1_end
    assert d1_end < older.end_time < d3_end
    assert run.exit_code == 1


def test_deleted_oldest_digest_is_missing_with_default_start(trail):
    first = T.digest_at(trail, R1, 0)
    T.delete(trail, first.ref)
    run = run_memory(trail)
    assert [(r.key, r.verdict.reason) for r in run.digests if r.verdict.status == "missing"] == [
        (first.ref.key, "not_found")]


def test_cut_tail_is_truncated_in_every_chain(trail):
    T.delete_tail(trail, 2.5)
    run = run_memory(trail)
    truncated = [r for r in run.digests if r.verdict.reason == "truncated"]
    assert sorted(r.region for r in truncated) == ["eu-west-1", "us-east-1"]
    assert all(r.key is None and r.start_time and r.end_time for r in truncated)
    assert run.exit_code == 1


def test_injected_log_in_covered_hour_is_unreferenced(trail):
    ref = T.inject_log(trail, R1, trail.spec.start + timedelta(hours=2, minutes=30))
    run = run_memory(trail)
    assert run.problems() == [("log", "invalid", "unreferenced", ref.key)]
    assert [r.digest_key for r in run.logs if r.key == ref.key] == [None]
    assert run.exit_code == 1


def test_injected_log_younger_than_backfill_horizon_is_pending(trail):
    ref = T.inject_log(trail, R1, trail.spec.start + timedelta(hours=2, minutes=30))
    run = run_memory(trail, backfill_horizon=timedelta(days=30))
    assert run.problems() == [("log", "pending", "awaiting_digest", ref.key)]
    assert run.exit_code == 0


def test_gap_from_stopped_logging_is_reported_and_passes():
    trail = generate(stops=((2, 4),))
    run = run_memory(trail)
    assert run.problems() == []
    assert [(g.region, g.end_time - g.start_time > timedelta(hours=1)) for g in run.gaps] == [
        ("eu-west-1", True), ("us-east-1", True)]
    assert run.exit_code == 0


def test_log_in_a_gap_is_not_covered():
    trail = generate(stops=((2, 4),))
    ref = T.inject_log(trail, R1, trail.spec.start + timedelta(hours=3, minutes=10))
    run = run_memory(trail)
    assert run.problems() == [("log", "unverifiable", "not_covered", ref.key)]
    assert run.exit_code == 3


def test_log_newer_than_newest_digest_is_pending_while_logging():
    trail = generate(logging_at_end=True)
    last_end = max(parse_key(d.ref.key).time for d in trail.digests())
    ref = T.inject_log(trail, R1, last_end + timedelta(minutes=10))
    run = run_memory(trail)
    assert run.problems() == [("log", "pending", "awaiting_digest", ref.key)]
    assert run.exit_code == 0


def test_backfill_digests_form_their_own_chain():
    trail = generate(backfill_hours=(1, 3))
    run = run_memory(trail)
    assert run.problems() == []
    backfill = [r for r in run.digests if r.backfill]
    assert len(backfill) == 4  # two hours, two regions
    late = {e["s3Object"] for d in trail.digests(backfill=True) for e in trail.digest_doc(d.ref)["logFiles"]}
    assert {r.key for r in run.logs if r.key in late} == late


def test_backfill_digest_without_generation_timestamp_is_invalid_format():
    trail = generate(backfill_hours=(1,))
    bf = trail.digests(trail.spec.trail_account, R1, backfill=True)[0]
    md = dict(bf.meta.metadata)
    md.pop("backfill-generation-timestamp")
    trail.with_meta(bf.ref, metadata=md)
    run = run_memory(trail)
    assert ("digest", "invalid", "invalid_format", bf.ref.key) in run.problems()


def test_digest_not_sse_s3_is_a_warning(trail):
    victim = T.digest_at(trail, R1, 1)
    T.reencrypt(trail, victim.ref, "arn:aws:kms:us-east-1:111122223333:key/bucket-default")
    run = run_memory(trail)
    assert run.problems() == [("digest", "warning", "not_sse_s3", victim.ref.key)]
    assert run.exit_code == 3


def test_log_under_bucket_default_key_is_unexpected_encryption():
    trail = generate(kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/trail-key",
                     bucket_default_key="arn:aws:kms:us-east-1:111122223333:key/bucket-key")
    assert run_memory(trail).exit_code == 0
    victim = T.log_at(trail, R1, 1)
    T.reencrypt(trail, victim.ref)
    run = run_memory(trail)
    assert run.problems() == [("log", "warning", "unexpected_encryption", victim.ref.key)]
    msg = next(r.verdict.message for r in run.logs if r.key == victim.ref.key)
    assert "bucket-key" in msg and "trail-key" in msg


def test_further_expected_log_key_is_accepted():
    trail = generate(kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/new-key")
    victim = T.log_at(trail, R1, 1)
    T.reencrypt(trail, victim.ref, "arn:aws:kms:us-east-1:111122223333:key/old-key")
    assert run_memory(trail).exit_code == 3
    run = run_memory(trail, extra_log_keys=frozenset({"arn:aws:kms:us-east-1:111122223333:key/old-key"}))
    assert run.exit_code == 0


def test_organization_trail_validates_every_member():
    trail = generate(accounts=("111122223333", "444455556666", "777788889999"), org_id="o-abcdef1234",
                     regions=("us-east-1",), hours=3)
    run = run_memory(trail)
    assert run.exit_code == 0
    assert sorted({r.account_id for r in run.digests}) == ["111122223333", "444455556666", "777788889999"]
    one = run_memory(trail, account_id="444455556666")
    assert {r.account_id for r in one.digests} == {"444455556666"} and len(one.digests) == 3


def test_prefix_and_region_narrowing():
    trail = generate(prefix="team/audit", regions=("us-east-1", "eu-west-1", "ap-southeast-2"), hours=3)
    run = run_memory(trail)
    assert run.exit_code == 0 and len(run.digests) == 9
    narrowed = run_memory(trail, regions=frozenset({"eu-west-1"}))
    assert {r.region for r in narrowed.digests} == {"eu-west-1"}


def test_expected_region_and_account_missing(trail):
    for obj in list(trail.objects.values()):
        if "/eu-west-1/" in obj.ref.key:
            T.delete(trail, obj.ref)
    assert run_memory(trail).exit_code == 0  # nothing says eu-west-1 should be there
    run = run_memory(trail, expect_regions=frozenset({"us-east-1", "eu-west-1"}),
                     expect_accounts=frozenset({"111122223333", "222233334444"}))
    reasons = sorted((r.verdict.reason, r.account_id, r.region) for r in run.digests if r.verdict.status == "missing")
    assert reasons == [("account_missing", "222233334444", ""), ("region_missing", "111122223333", "eu-west-1")]
    assert run.exit_code == 1


def test_window_narrows_digests_and_logs(trail):
    s = trail.spec.start
    run = run_memory(trail, start=s + timedelta(hours=2, minutes=30), end=s + timedelta(hours=4, minutes=30))
    assert run.exit_code == 0
    # hours 2, 3 and 4 meet the window in both regions
    assert len(run.digests) == 6
    expected_logs = set()
    for d in trail.digests():
        name = parse_key(d.ref.key)
        if s + timedelta(hours=2, minutes=30) <= name.time and name.time - timedelta(hours=1) <= s + timedelta(hours=4, minutes=31):
            expected_logs |= logs_of(trail, d)
    assert {r.key for r in run.logs} == expected_logs


def test_log_of_another_trail_in_the_same_folder_is_not_reported(trail):
    other = generate(trail_name="other-trail", seed=7, rotate_at_hour=None)
    for ref, obj in other.objects.items():
        trail.objects[ref] = obj
    # the other trail's keys are the same regional keys in real life; here they differ, so trust both
    for region, keys in other.keys.items():
        trail.keys.setdefault(region, []).extend(keys)
    run = run_memory(trail)
    assert run.exit_code == 0
    assert len(run.logs) == len(trail.logs()) - len(other.logs())
    assert len(run.digests) == 12


def test_chain_that_moved_to_another_bucket_is_followed():
    """The trail's bucket changed: the newer digests point back into the old bucket."""
    trail = generate(hours=4, regions=("us-east-1",))
    d0, d1, d2, _ = trail.digests()

    def into_old(doc):
        doc["digestS3Bucket"] = "ct-old-bucket"
        if doc["previousDigestS3Bucket"]:
            doc["previousDigestS3Bucket"] = "ct-old-bucket"

    T.resign(trail, d0.ref, into_old)
    T.resign(trail, d1.ref, into_old)
    T.resign(trail, d2.ref, lambda doc: doc.update(previousDigestS3Bucket="ct-old-bucket"))
    for d in (d0, d1):
        obj = trail.objects.pop(d.ref)
        new = ObjectRef("ct-old-bucket", d.ref.key)
        trail.objects[new] = T.StoredObject(T.replace(obj.meta, ref=new), obj.body)
    run = run_memory(trail)
    assert run.exit_code == 0, run.problems()
    assert sorted(r.bucket for r in run.digests) == ["ct-demo-logs", "ct-demo-logs", "ct-old-bucket", "ct-old-bucket"]


def test_home_region_deleted_whole_is_missing_when_the_status_names_a_delivery(trail):
    """Deleting every digest and log of the home region leaves no chain to link; the trail's own status (a
    digest delivered inside the window) still says one must be there."""
    home = f"AWSLogs/{trail.spec.trail_account}/CloudTrail-Digest/{R1}/"
    for ref in [r for r in trail.objects if r.key.startswith(home) or f"/CloudTrail/{R1}/" in r.key]:
        T.delete(trail, ref)
    run = run_memory(trail)
    assert run.problems() == [("digest", "missing", "region_missing", "")]
    assert [r.region for r in run.digests if r.key is None] == [R1]
    assert run.exit_code == 1
    assert run_memory(trail, regions=frozenset({"eu-west-1"})).exit_code == 0  # narrowed away: not expected
    assert run_memory(trail, with_trail_info=False, bucket=trail.spec.bucket).exit_code == 0  # no status


def test_other_trail_of_the_same_account_finds_nothing_and_says_so(tmp_path):
    from click.testing import CliRunner
    from validator.cli import main
    res = CliRunner().invoke(main, [
        "validate", "--trail-arn", "arn:aws:cloudtrail:us-east-1:111122223333:trail/another-trail",
        "--source", "fixtures/demo"])
    assert res.exit_code == 0, res.output
    assert "acquired for trail us-east-1:111122223333:demo-trail" in res.stderr
    assert "nothing was validated" in res.stderr
