"""Forensic depth on the evidence path: explained gaps, write times, stray objects."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import run_memory
from validator.model import ObjectMeta, ObjectRef
from validator.synth import generate
from validator.synth import tamper as T
from validator.synth.trail import StoredObject

R1 = "us-east-1"


def test_gap_is_explained_by_the_principal_who_stopped_logging():
    trail = generate(stops=((2, 4),))
    run = run_memory(trail)
    assert len(run.gaps) == 2 and run.exit_code == 0
    for gap in run.gaps:
        e = gap.explained_by
        assert e["event_name"] == "StopLogging" and e["principal_arn"].endswith(":user/alice")
        assert e["event_id"] and e["source_ip"] and e["event_time"] <= gap.to_json()["start_time"]
        assert e["restarted_by"]["event_name"] == "StartLogging"
        assert "explained by StopLogging" in gap.message


def test_unexplained_gap_fails_only_when_required():
    trail = generate(stops=((2, 4),), explain_stops=False)
    run = run_memory(trail)
    assert [g.explained_by for g in run.gaps] == [None, None] and run.exit_code == 0
    assert "no StopLogging" in run.gaps[0].message
    assert run_memory(trail, require_explained_gaps=True).exit_code == 1


def test_an_injected_log_cannot_explain_a_gap():
    """A forged StopLogging in a log no digest lists is not evidence: the gap stays unexplained."""
    trail = generate(stops=((2, 4),), explain_stops=False)
    gen = trail.generator
    at = trail.spec.start + timedelta(hours=1, minutes=50)
    forged = gen._event(trail.spec.trail_account, R1, at, "StopLogging", params={"name": trail.arn})
    obj, _ = gen._log(trail.spec.trail_account, R1, at + timedelta(minutes=1), [forged])
    trail.objects[obj.ref] = obj
    run = run_memory(trail, require_explained_gaps=True)
    assert all(g.explained_by is None for g in run.gaps)
    assert ("log", "invalid", "unreferenced", obj.ref.key) in run.problems()
    assert run.exit_code == 1


def test_late_rewrite_with_cloudtrail_encryption_is_caught_by_write_time():
    trail = generate()
    victim = T.log_at(trail, R1, 2)
    T.reencrypt(trail, victim.ref, sse="AES256", rewritten_at=trail.acquired_at - timedelta(hours=3))
    assert run_memory(trail).exit_code == 0  # bytes and encryption look right
    run = run_memory(trail, check_write_times=True)
    assert run.problems() == [("log", "warning", "late_write", victim.ref.key)]
    assert run_memory(trail, check_write_times=True, write_time_tolerance=timedelta(days=30)).exit_code == 0


def test_late_digest_rewrite_is_caught_and_copies_are_exempt():
    trail = generate()
    victim = T.digest_at(trail, R1, 1)
    trail.with_meta(victim.ref, last_modified=trail.acquired_at - timedelta(hours=1))
    run = run_memory(trail, check_write_times=True)
    assert run.problems() == [("digest", "warning", "late_write", victim.ref.key)]


def test_stray_objects_are_reported_without_changing_the_trail_verdicts():
    trail = generate()
    base = f"AWSLogs/{trail.spec.trail_account}/CloudTrail/{R1}/2026/11/02/"
    for key in (base + "notes.txt", base.replace("/02/", "/03/") +
                f"{trail.spec.trail_account}_CloudTrail_{R1}_20261102T0130Z_abcdef.json.gz",
                f"AWSLogs/{trail.spec.trail_account}/CloudTrail-Digest/{R1}/2026/11/02/backup.json.gz"):
        ref = ObjectRef(trail.spec.bucket, key)
        trail.objects[ref] = StoredObject(ObjectMeta(ref=ref, sse="AES256"), b"x")
    run = run_memory(trail)
    strays = [r for r in run.records if r.kind == "object"]
    assert len(strays) == 3 and {(r.verdict.status, r.verdict.reason) for r in strays} == {("warning", "stray")}
    assert [r for r in run.records if r.kind in ("digest", "log") and r.verdict.status != "valid"] == []
    assert run.exit_code == 3


def _update(params: dict, at: str = "2026-11-02T01:10:00Z", eid: str = "e-1") -> bytes:
    import orjson
    return orjson.dumps({"Records": [{"eventName": "UpdateTrail", "eventSource": "cloudtrail.amazonaws.com",
                                      "eventTime": at, "eventID": eid, "sourceIPAddress": "192.0.2.7",
                                      "userIdentity": {"arn": "arn:aws:iam::111122223333:user/eve"},
                                      "requestParameters": {"name": "t", **params}}]})


def test_update_trail_explains_a_gap_only_when_it_breaks_the_chain():
    from datetime import datetime, timezone

    from validator.core.explain import START_EVENTS, STOP_EVENTS, explanation, trail_events
    arn = "arn:aws:cloudtrail:us-east-1:111122223333:trail/t"
    start = datetime(2026, 11, 2, 1, 15, tzinfo=timezone.utc)
    end = start + timedelta(hours=2)
    off = trail_events(_update({"enableLogFileValidation": False}), "k", "t", arn, STOP_EVENTS)
    e = explanation(off, [], start, end)
    assert (e["event_name"], e["principal_arn"], e["changes"]) == ("UpdateTrail", "arn:aws:iam::111122223333:user/eve",
                                                                  {"enableLogFileValidation": False})
    moved = trail_events(_update({"s3BucketName": "elsewhere"}), "k", "t", arn, STOP_EVENTS)
    assert explanation(moved, [], start, end)["changes"] == {"s3BucketName": "elsewhere"}
    assert trail_events(_update({"isMultiRegionTrail": False}), "k", "t", arn, STOP_EVENTS)
    # an update that changes nothing of the chain (the SNS topic), or turns validation on, is no stop
    assert trail_events(_update({"snsTopicName": "alerts"}), "k", "t", arn, STOP_EVENTS) == []
    assert trail_events(_update({"enableLogFileValidation": True}), "k", "t", arn, STOP_EVENTS) == []
    # ... but turning validation back on restarts the chain
    on = trail_events(_update({"enableLogFileValidation": True}, at="2026-11-02T03:00:00Z", eid="e-2"), "k", "t",
                      arn, START_EVENTS)
    assert explanation(off, on, start, end)["restarted_by"]["event_id"] == "e-2"


def test_a_hostile_key_cannot_forge_a_line_of_the_text_output():
    """S3 keys may hold newlines and tabs: printed raw, a stray object's key could add a 'valid' line."""
    import io

    from validator.report import make_reporter
    trail = generate()
    forged = "Log file\ts3://ct-demo-logs/AWSLogs/forged.json.gz\tvalid"
    key = f"AWSLogs/{trail.spec.trail_account}/CloudTrail/{R1}/2026/11/02/x.txt\n\n{forged}\n"
    ref = ObjectRef(trail.spec.bucket, key)
    trail.objects[ref] = StoredObject(ObjectMeta(ref=ref, sse="AES256"), b"x")
    run = run_memory(trail)
    out, err = io.StringIO(), io.StringIO()
    reporter = make_reporter("text", out, err, True)
    reporter.start({"trail_arn": trail.arn, "start_time": None, "end_time": "now"})
    for r in run.records:
        reporter.record(r)
    reporter.finish(run.summary)
    lines = (out.getvalue() + err.getvalue()).splitlines()
    assert forged not in lines
    assert any("x.txt\\x0a\\x0aLog file\\x09s3://" in line for line in lines)
