"""Versions, delete markers and Object Lock on the pipeline level (an in-memory versioned bucket), and how
the text and HTML reports show them."""

from __future__ import annotations

import gzip
import io
from dataclasses import replace
from datetime import timedelta

import orjson

from tests.helpers import Run
from validator.model import TrailArn
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.report import html as H
from validator.report.text import TextReporter
from validator.results import GapRecord
from validator.sources.base import BucketProtection
from validator.synth import generate
from validator.synth import tamper as T
from validator.synth.memory import VersionedMemorySource
from validator.synth.trail import StoredObject

R1 = "us-east-1"


def run_versioned(trail, **kw) -> Run:
    source = VersionedMemorySource(trail, **kw)
    v = Validation(source, RunConfig(trail=TrailArn.parse(trail.arn), workers=4), None, None, now=trail.acquired_at)
    return Run(list(v.records()), v.summary)


def by_key(run: Run, key: str):
    found = [r for r in run.records if getattr(r, "key", None) == key]
    assert len(found) == 1, found
    return found[0]


def _forged(obj: StoredObject) -> StoredObject:
    doc = orjson.loads(gzip.decompress(obj.body))
    doc["Records"][0]["sourceIPAddress"] = "203.0.113.66"
    body = gzip.compress(orjson.dumps(doc), mtime=0)
    return StoredObject(replace(obj.meta, size=len(body)), body)


def test_deleted_digest_is_missing_but_its_surviving_version_keeps_the_chain_and_covers_its_logs():
    trail = generate()
    digest = T.digest_at(trail, R1, 2)
    listed = [e["s3Object"] for e in trail.digest_doc(digest.ref)["logFiles"]]
    when = trail.acquired_at - timedelta(hours=5)
    older = {digest.ref: [trail.objects.pop(digest.ref)]}
    run = run_versioned(trail, older=older, deleted={digest.ref: when})
    rec = by_key(run, digest.ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("missing", "not_found") and run.exit_code == 1
    j = rec.to_json()
    assert j["deleted"] == {"at": (when.strftime("%Y-%m-%dT%H:%M:%SZ")), "version_id": "marker"}
    assert [(v["version_id"], v["status"]) for v in j["versions"]] == [("marker", None), ("v0", "valid")]
    assert not [r for r in run.digests if r.key is None] and not run.gaps
    assert all(by_key(run, k).verdict.status == "valid" and by_key(run, k).digest_key == digest.ref.key
               for k in listed)
    assert run.summary.to_json()["history"] == {"deleted": 1}
    # without versions, the same deletion leaves the logs uncovered
    plain = run_versioned(trail, protection=BucketProtection(versioning=None))
    assert {by_key(plain, k).verdict.reason for k in listed} == {"not_covered"}
    assert "versions" not in by_key(plain, digest.ref.key).to_json()


def test_rewritten_log_every_version_judged_against_the_digest_hash():
    trail = generate()
    log = T.log_at(trail, R1, 1)
    original = trail.objects[log.ref]
    trail.objects[log.ref] = _forged(original)
    run = run_versioned(trail, older={log.ref: [StoredObject(original.meta, original.body)]})
    j = by_key(run, log.ref.key).to_json()
    assert (j["status"], j["reason"], j["rewritten"]) == ("invalid", "hash_mismatch", True)
    assert [(v["version_id"], v["status"], v["reason"]) for v in j["versions"]] == [
        ("current", "invalid", "hash_mismatch"), ("v0", "valid", None)]
    # the reports show the history
    out, err = io.StringIO(), io.StringIO()
    text = TextReporter(out, err, verbose=False)
    for r in run.records:
        text.record(r)
    text.finish(run.summary)
    assert "\tversion v0 of " in err.getvalue() and ": valid" in err.getvalue()
    assert "History: 1 rewritten object(s)" in out.getvalue() and "versioning Enabled" in out.getvalue()


def test_a_deleted_log_no_digest_lists_is_still_reported():
    trail = generate(stops=((2, 4),))
    # a log CloudTrail delivered while validation was off (no digest lists it), then deleted
    at = trail.spec.start + timedelta(hours=2, minutes=30)
    ref = T.inject_log(trail, R1, at)
    obj = trail.objects.pop(ref)
    run = run_versioned(trail, older={ref: [obj]}, deleted={ref: trail.acquired_at - timedelta(hours=1)})
    rec = by_key(run, ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("missing", "not_found")
    assert "no digest lists it" in rec.verdict.message and rec.to_json()["deleted"]["version_id"] == "marker"


def test_compliance_retention_since_the_write_makes_an_object_immutable():
    trail = generate(regions=(R1,))
    for obj in trail.objects.values():
        obj.meta = replace(obj.meta, lock_mode="COMPLIANCE", lock_until=obj.meta.last_modified + timedelta(days=30))
    run = run_versioned(trail, protection=BucketProtection("Enabled", True, "COMPLIANCE", days=30))
    assert run.exit_code == 0
    for r in run.digests + run.logs:
        j = r.to_json()
        assert j["immutable"] is True and j["retention"]["since_write"] is True
        assert "cannot have been rewritten or deleted since it was written" in j["message"]
    assert run.summary.to_json()["object_lock"] == {"enabled": True, "mode": "COMPLIANCE", "days": 30, "years": None}
    # a retention that began a year after the write does not vouch for the write
    for obj in trail.objects.values():
        obj.meta = replace(obj.meta, lock_until=obj.meta.last_modified + timedelta(days=400))
    later = run_versioned(trail, protection=BucketProtection("Enabled", True, "COMPLIANCE", days=30))
    j = later.digests[0].to_json()
    assert j["retention"]["since_write"] is False and "while the retention holds" in j["message"]


def test_html_report_shows_history_restart_and_bucket(tmp_path):
    trail = generate()
    log = T.log_at(trail, R1, 1)
    original = trail.objects[log.ref]
    trail.objects[log.ref] = _forged(original)
    run = run_versioned(trail, older={log.ref: [StoredObject(original.meta, original.body)]})
    rep = H.HtmlReporter(tmp_path / "r.html", {})
    rep.start({"trail_arn": trail.arn})
    for r in run.records:
        rep.record(r)
    gap = GapRecord(R1, trail.spec.trail_account, trail.spec.start, trail.spec.start + timedelta(hours=1),
                    explained_by={"event_name": "StopLogging", "event_time": "t1", "principal_arn": "arn:p<b>",
                                  "source_ip": "192.0.2.1", "event_id": "e1",
                                  "restarted_by": {"event_name": "StartLogging", "event_time": "t2",
                                                   "principal_arn": "arn:q", "source_ip": "192.0.2.2",
                                                   "event_id": "e2"}})
    rep.record(gap)
    rep.finish(run.summary)
    page = (tmp_path / "r.html").read_text()
    assert "Object history" in page and log.ref.key.rsplit("/", 1)[1] in page.split("Object history")[1]
    assert "restarted by StartLogging at t2 by arn:q" in page and "arn:p&lt;b&gt;" in page
    assert "versioning Enabled; Object Lock off" in page


def test_versions_of_one_key_are_capped(monkeypatch):
    from validator import history
    monkeypatch.setattr(history, "MAX_VERSIONS_PER_KEY", 3)
    trail = generate()
    log = T.log_at(trail, R1, 1)
    original = trail.objects[log.ref]
    older = [_forged(original) for _ in range(6)] + [StoredObject(original.meta, original.body)]
    run = run_versioned(trail, older={log.ref: older})
    j = by_key(run, log.ref.key).to_json()
    assert [v["version_id"] for v in j["versions"]] == ["current", "v0", "v1"] and j["more_versions"] == 5
    assert j["status"] == "valid" and j["rewritten"] is True


def test_two_digests_deleted_in_a_row_and_a_cut_tail_are_all_named_by_their_delete_markers():
    """Without versions the older of two deleted digests has no knowable key (key: null), and a deleted tail
    is only 'truncated'; the delete markers name every one, and their versions restore the chain."""
    trail = generate(regions=(R1,), logging_at_end=True, hours=8)
    digests = [T.digest_at(trail, R1, n) for n in (2, 3, 5, 6, 7)]
    when = trail.acquired_at - timedelta(minutes=10)
    older = {d.ref: [trail.objects.pop(d.ref)] for d in digests}
    plain = run_versioned(trail, protection=BucketProtection(versioning=None))
    assert {(r.verdict.reason, r.key is None) for r in plain.digests if r.verdict.status == "missing"} >= {
        ("not_found", True), ("truncated", True)}
    run = run_versioned(trail, older=older, deleted={d.ref: when for d in digests})
    missing = [r for r in run.digests if r.verdict.status == "missing"]
    assert sorted(r.key for r in missing) == sorted(d.ref.key for d in digests)
    assert all(r.to_json()["versions"][1]["status"] == "valid" for r in missing)
    assert run.statuses("log") == {"valid": len(trail.logs())}
