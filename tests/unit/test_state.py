"""--state: incremental runs over in-memory trails and evidence directories (no server).

Each test runs the real pipeline twice over one trail with one state file, changing the trail in between
as time or an attacker would, and counts what the second run had to read."""

from __future__ import annotations

import copy
import io
import json
import sqlite3
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import Run
from validator.app import ValidateRequest, run_validate
from validator.cli import main
from validator.model import ObjectRef, TrailArn, parse_key
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.state import StateError, StateStore, file_sha256
from validator.synth import SyntheticTrail, generate
from validator.synth import tamper as T
from validator.sources.base import BucketProtection
from validator.synth.memory import MemorySource, VersionedMemorySource
from validator.synth.trail import StoredObject

R1, R2 = "us-east-1", "eu-west-1"


class CountingSource(MemorySource):
    def __init__(self, trail: SyntheticTrail):
        super().__init__(trail)
        self.opened: list[ObjectRef] = []
        self._lock = threading.Lock()

    def open(self, ref: ObjectRef):
        with self._lock:
            self.opened.append(ref)
        return super().open(ref)


def run_state(trail: SyntheticTrail, state: Path, *, recheck: bool = False, expect: str | None = None,
              source: MemorySource | None = None, **config) -> tuple[Run, CountingSource]:
    cfg = RunConfig(trail=TrailArn.parse(trail.arn), workers=4, **config)
    source = source or CountingSource(trail)
    store = StateStore.open(state, expect)
    try:
        v = Validation(source, cfg, None, None, now=trail.acquired_at, state=store, recheck=recheck)
        records = list(v.records())
    except BaseException:
        store.close()
        raise
    v.summary.state_sha256 = store.commit()
    return Run(records, v.summary), source


def verdicts(run: Run) -> list[tuple]:
    return [(r.kind, r.key, r.verdict.status, r.verdict.reason) for r in run.records if r.kind != "gap"]


def hour_of(ref: ObjectRef) -> int:
    name = parse_key(ref.key)
    return int((name.time - timedelta(minutes=1) if name.is_digest else name.time).timestamp() // 3600)


def split_last_hour(trail: SyntheticTrail) -> tuple[SyntheticTrail, dict[ObjectRef, object]]:
    """The trail without its newest hour (digests and logs), and that hour's objects."""
    last = max(hour_of(r) for r in trail.objects)
    early = copy.copy(trail)
    early.objects = {r: o for r, o in trail.objects.items() if hour_of(r) < last}
    return early, {r: o for r, o in trail.objects.items() if hour_of(r) == last}


@pytest.fixture
def trail() -> SyntheticTrail:
    return generate(hours=6, seed=7)


def test_a_second_run_over_an_unchanged_trail_reads_nothing(trail, tmp_path):
    state = tmp_path / "s.db"
    first, src1 = run_state(trail, state)
    assert first.exit_code == 0 and src1.opened and not first.summary.from_state
    second, src2 = run_state(trail, state, expect=first.summary.state_sha256)
    assert src2.opened == []
    assert verdicts(second) == verdicts(first)
    assert all(r.from_state for r in second.digests + second.logs)
    assert second.summary.from_state == {"digest": len(first.digests), "log": len(first.logs)}
    assert second.exit_code == 0


def test_one_new_hour_costs_only_that_hour(trail, tmp_path):
    state = tmp_path / "s.db"
    early, new = split_last_hour(trail)
    first, _ = run_state(early, state)
    assert first.exit_code == 0
    second, src = run_state(trail, state)
    assert set(src.opened) == set(new)  # the new hour's digests and logs, nothing else
    assert len(src.opened) == len(new)
    assert second.exit_code == first.exit_code == 0
    full, _ = run_state(trail, tmp_path / "fresh.db")
    assert verdicts(second) == verdicts(full)
    fetched = {(r.kind, r.key) for r in second.digests + second.logs if not r.from_state}
    assert fetched == {("digest" if "Digest" in r.key else "log", r.key) for r in new}


def test_a_new_hour_must_link_onto_the_last_verified_digest(trail, tmp_path):
    """The new digest is re-signed with a wrong previous hash: the chain check runs over the whole window."""
    state = tmp_path / "s.db"
    early, _ = split_last_hour(trail)
    run_state(early, state)
    newest = trail.digests(region=R1)[-1]
    T.chain_hash(trail, newest.ref)
    second, src = run_state(trail, state)
    assert ("digest", "invalid", "chain_hash_mismatch") in {(k, s, r) for k, s, r, _ in second.problems()}
    assert second.exit_code == 1
    assert newest.ref in src.opened


def test_a_digest_changed_since_the_first_run_is_detected(trail, tmp_path):
    state = tmp_path / "s.db"
    first, _ = run_state(trail, state)
    victim = trail.digests(region=R2)[2]
    T.modify_digest(trail, victim.ref)
    trail.with_meta(victim.ref, last_modified=trail.acquired_at)
    second, src = run_state(trail, state)
    rec = next(r for r in second.digests if r.key == victim.ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("invalid", "signature_mismatch")
    assert not rec.from_state and "changed since the state recorded it valid" in rec.verdict.message
    assert "ETag" in rec.verdict.message
    assert src.opened.count(victim.ref) == 1
    assert second.exit_code == 1
    third, _ = run_state(trail, state)  # an invalid row is never trusted: still invalid, fetched again
    assert next(r for r in third.digests if r.key == victim.ref.key).verdict.reason == "signature_mismatch"


def test_a_log_changed_or_vanished_since_the_first_run_is_detected(trail, tmp_path):
    state = tmp_path / "s.db"
    run_state(trail, state)
    changed, gone = T.log_at(trail, R1, 2), T.log_at(trail, R2, 1)
    T.modify_log(trail, changed.ref)
    T.delete(trail, gone.ref)
    second, src = run_state(trail, state)
    by_key = {r.key: r for r in second.logs}
    assert by_key[changed.ref.key].verdict.reason == "hash_mismatch"
    assert "changed since the state" in by_key[changed.ref.key].verdict.message
    assert (by_key[gone.ref.key].verdict.status, by_key[gone.ref.key].verdict.reason) == ("missing", "not_found")
    assert "vanished" in by_key[gone.ref.key].verdict.message
    assert set(src.opened) == {changed.ref, gone.ref}


def test_reencrypted_digest_is_fetched_again_and_warned(trail, tmp_path):
    state = tmp_path / "s.db"
    run_state(trail, state)
    victim = trail.digests(region=R1)[1]
    T.reencrypt(trail, victim.ref, rewritten_at=trail.acquired_at)
    second, src = run_state(trail, state)
    rec = next(r for r in second.digests if r.key == victim.ref.key)
    assert (rec.verdict.status, rec.verdict.reason) == ("warning", "not_sse_s3") and src.opened == [victim.ref]
    third, src3 = run_state(trail, state)  # a warning row is reused, and judged again from it: still a warning
    rec3 = next(r for r in third.digests if r.key == victim.ref.key)
    assert rec3.from_state and rec3.verdict.reason == "not_sse_s3" and src3.opened == []


def test_state_verdicts_follow_this_runs_policy(trail, tmp_path):
    """Encryption and write-time rules are applied to the stored metadata with this run's settings."""
    state = tmp_path / "s.db"
    late = T.log_at(trail, R1, 0)
    trail.with_meta(late.ref, last_modified=parse_key(late.ref.key).time + timedelta(hours=5))
    assert run_state(trail, state)[0].exit_code == 0
    second, src = run_state(trail, state, check_write_times=True)
    assert src.opened == []
    rec = next(r for r in second.logs if r.key == late.ref.key)
    assert rec.from_state and (rec.verdict.status, rec.verdict.reason) == ("warning", "late_write")


def test_recheck_fetches_everything(trail, tmp_path):
    state = tmp_path / "s.db"
    first, src1 = run_state(trail, state)
    second, src2 = run_state(trail, state, recheck=True)
    assert sorted(src2.opened) == sorted(src1.opened)
    assert not second.summary.from_state and verdicts(second) == verdicts(first)


def test_a_state_edited_behind_the_tools_back_is_refused(trail, tmp_path):
    state = tmp_path / "s.db"
    T.modify_log(trail, T.log_at(trail, R1, 0).ref)
    first, _ = run_state(trail, state)
    assert first.exit_code == 1
    with sqlite3.connect(state) as db:  # mark the invalid log valid, as someone hiding it would
        db.execute("UPDATE objects SET status = 'valid', reason = NULL WHERE status = 'invalid'")
    with pytest.raises(StateError, match="do not hash"):
        StateStore.open(state)


def test_a_trigger_smuggled_into_the_state_is_refused(trail, tmp_path):
    state = tmp_path / "s.db"
    run_state(trail, state)
    with sqlite3.connect(state) as db:
        db.execute("CREATE TRIGGER t AFTER INSERT ON objects BEGIN DELETE FROM objects; END")
    with pytest.raises(StateError, match="schema"):
        StateStore.open(state)


def test_the_anchor_refuses_any_other_file(trail, tmp_path):
    state = tmp_path / "s.db"
    first, _ = run_state(trail, state)
    anchor = first.summary.state_sha256
    assert anchor == file_sha256(state)
    other = tmp_path / "other.db"
    run_state(generate(hours=5, seed=7), other)  # a genuine state of the same trail, but not the one recorded
    with pytest.raises(StateError, match="not to --state-sha256"):
        StateStore.open(other, anchor)
    with pytest.raises(StateError, match="does not exist"):
        StateStore.open(tmp_path / "none.db", anchor)
    with pytest.raises(StateError, match="64 hex"):
        StateStore.open(state, "abc")
    StateStore.open(state, anchor.upper()).close()


def test_another_trails_state_is_refused(trail, tmp_path):
    state = tmp_path / "s.db"
    run_state(trail, state)
    other = generate(hours=3, trail_name="other-trail", bucket="other-bucket")
    with pytest.raises(StateError, match="belongs to another trail"):
        run_state(other, state)


def test_not_a_state_file_is_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"hello, not sqlite" * 10)
    with pytest.raises(StateError, match="not an SQLite"):
        StateStore.open(junk)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE x (y)")
    with pytest.raises(StateError, match="schema"):
        StateStore.open(foreign)


def test_a_second_run_on_the_same_state_is_refused_while_the_first_holds_it(trail, tmp_path, monkeypatch):
    import validator.state as S
    monkeypatch.setattr(S, "LOCK_TIMEOUT", 0.1)
    state = tmp_path / "s.db"
    run_state(trail, state)
    holder = StateStore.open(state)
    try:
        with pytest.raises(StateError, match="in use by another run"):
            StateStore.open(state)
    finally:
        holder.close()
    StateStore.open(state).close()  # free again once the first has finished


def evidence(trail: SyntheticTrail, path: Path) -> str:
    trail.write_evidence(str(path))
    return str(path)


def cli(*args: str):
    r = CliRunner().invoke(main, ["validate", *args, "--output", "json"], catch_exceptions=False)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    return r, lines


def test_cli_prints_the_anchor_and_takes_it_back(trail, tmp_path):
    ev = evidence(trail, tmp_path / "ev")
    state = str(tmp_path / "s.db")
    r1, lines1 = cli("--trail-arn", trail.arn, "--source", ev, "--state", state)
    assert r1.exit_code == 0 and "new state file" in r1.stderr
    sha = lines1[-1]["trust"]["state_sha256"]
    assert sha == file_sha256(state) and f"SHA-256 {sha}" in r1.stderr
    assert all(not x.get("from_state", False) for x in lines1 if x["kind"] in ("digest", "log"))
    r2, lines2 = cli("--trail-arn", trail.arn, "--source", ev, "--state", state)
    assert r2.exit_code == 0 and "not anchored" in r2.stderr
    assert all(x.get("from_state", False) for x in lines2 if x["kind"] in ("digest", "log"))
    assert lines2[-1]["from_state"]["logs"] == sum(1 for x in lines2 if x["kind"] == "log") > 0
    r3, _ = cli("--trail-arn", trail.arn, "--source", ev, "--state", state, "--state-sha256", sha)
    assert r3.exit_code == 2 and "not to --state-sha256" in r3.stderr  # run 2 rewrote it: the old anchor is stale
    new = r2.stderr.split("SHA-256 ")[1].split()[0]
    r4, _ = cli("--trail-arn", trail.arn, "--source", ev, "--state", state, "--state-sha256", new)
    assert r4.exit_code == 0 and "not anchored" not in r4.stderr
    text = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", ev, "--state", state])
    assert text.exit_code == 0 and f"State: {len(trail.digests())} digest and {len(trail.logs())} log files " \
        "unchanged" in text.stdout
    r5 = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", ev, "--recheck"])
    assert r5.exit_code == 2 and "go with --state" in r5.output


def test_an_interrupted_run_leaves_the_state_as_it_was(trail, tmp_path, monkeypatch):
    ev = evidence(trail, tmp_path / "ev")
    state = tmp_path / "s.db"
    early, _ = split_last_hour(trail)
    request = ValidateRequest(config=RunConfig(trail=TrailArn.parse(trail.arn)), source_dir=evidence(
        early, tmp_path / "ev-early"), state=str(state), output="json")
    assert run_validate(request, io.StringIO(), io.StringIO()) == 0
    before = file_sha256(state)
    original = Validation.records

    def records(self):
        for i, r in enumerate(original(self)):
            if i == 8:
                raise KeyboardInterrupt
            yield r

    monkeypatch.setattr(Validation, "records", records)
    err = io.StringIO()
    request = ValidateRequest(config=RunConfig(trail=TrailArn.parse(trail.arn)), source_dir=ev, state=str(state),
                              output="json")
    assert run_validate(request, io.StringIO(), err) == 130
    assert file_sha256(state) == before and "unchanged" in err.getvalue()
    assert not list(tmp_path.glob("s.db-*"))  # no journal left behind
    StateStore.open(state, before).close()


def test_evidence_and_live_states_are_not_mixed(trail, tmp_path):
    """A state is bound to the kind of source: evidence verdicts never stand in for live ones."""
    ev = evidence(trail, tmp_path / "ev")
    state = tmp_path / "s.db"
    cli("--trail-arn", trail.arn, "--source", ev, "--state", str(state))
    store = StateStore.open(state)
    try:
        assert store.meta["source"] == "evidence" and store.meta["bucket"] == trail.spec.bucket
    finally:
        store.close()


def test_a_region_deleted_since_the_state_is_missing(trail, tmp_path):
    """Without --expect-regions nothing else would tell: a run with no state sees one region and passes."""
    state = tmp_path / "s.db"
    run_state(trail, state)
    for ref in [r for r in trail.objects if f"/{R2}/" in r.key]:
        del trail.objects[ref]
    assert run_state(trail, tmp_path / "fresh.db")[0].exit_code == 0
    second, src = run_state(trail, state)
    assert second.exit_code == 1 and src.opened == []
    gone = [r for r in second.digests if r.verdict.reason == "region_missing"]
    assert [(r.region, r.key, r.verdict.status) for r in gone] == [(R2, None, "missing")]
    assert "folders were deleted" in gone[0].verdict.message
    narrowed, _ = run_state(trail, state, regions=frozenset({R1}))  # a run that leaves the region out
    assert narrowed.exit_code == 0


def test_gaps_are_explained_from_the_state_without_reading_logs_again(tmp_path):
    trail = generate(hours=8, stops=((3, 5),), seed=3)
    state = tmp_path / "s.db"
    first, _ = run_state(trail, state)
    assert first.gaps and all(g.explained_by for g in first.gaps)
    second, src = run_state(trail, state)
    assert src.opened == []
    assert [g.to_json() for g in second.gaps] == [g.to_json() for g in first.gaps]
    T.modify_log(trail, T.log_at(trail, R1, 0).ref)  # a changed log is read (and its events) again
    third, src3 = run_state(trail, state)
    assert [g.to_json() for g in third.gaps] == [g.to_json() for g in first.gaps]
    assert src3.opened == [T.log_at(trail, R1, 0).ref]


def test_kept_control_events_are_covered_by_the_rows_digest(tmp_path):
    trail = generate(hours=8, stops=((3, 5),), seed=3)
    state = tmp_path / "s.db"
    run_state(trail, state)
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] > 0
        db.execute("UPDATE events SET records = ?", (b'{"Records":[]}',))  # hide the StopLogging events
    with pytest.raises(StateError, match="do not hash"):
        StateStore.open(state)


def test_a_row_of_the_wrong_types_is_fetched_again_not_trusted(trail, tmp_path):
    """Someone who rewrites a row and recomputes the state's digest: a row of foreign types is ignored."""
    import validator.state as S
    state = tmp_path / "s.db"
    run_state(trail, state)
    victim = trail.digests(region=R1)[0].ref
    store = StateStore.open(state)
    store._db.execute("UPDATE objects SET body = 'not bytes', size = 'x' WHERE key = ?", (victim.key,))
    store.commit()  # a consistent digest over the forged row
    second, src = run_state(trail, state)
    assert src.opened == [victim] and second.exit_code == 0
    assert S._row(("b", "k", "log", None, None, None, None, None, "valid", None, "t") + (None,) * 10) is not None


def test_logs_deleted_with_their_digest_are_missing_by_the_state(trail, tmp_path):
    """Without a state the deleted digest is missing but its deleted logs are unknown; the state knew them."""
    state = tmp_path / "s.db"
    run_state(trail, state)
    victim = trail.digests(region=R1)[2]
    logs = [ObjectRef(e["s3Bucket"], e["s3Object"]) for e in trail.digest_doc(victim.ref)["logFiles"]]
    assert logs
    for ref in [victim.ref, *logs]:
        T.delete(trail, ref)
    without, _ = run_state(trail, tmp_path / "fresh.db")
    assert not {r.key for r in without.logs} & {r.key for r in logs}
    second, src = run_state(trail, state)
    assert src.opened == [victim.ref]  # the pointer to it is followed, as always: not found
    by_key = {r.key: r for r in second.logs}
    for ref in logs:
        assert (by_key[ref.key].verdict.status, by_key[ref.key].verdict.reason) == ("missing", "not_found")
        assert "has since vanished" in by_key[ref.key].verdict.message
    gone = next(r for r in second.digests if r.key == victim.ref.key)
    assert gone.verdict.status == "missing" and "the state recorded it valid" in gone.verdict.message
    keys = [(r.kind, r.key) for r in second.records if r.kind != "gap"]
    assert len(keys) == len(set(keys))  # each once
    assert second.exit_code == 1
    assert len(second.logs) == len(without.logs) + len(logs)



class CountingVersioned(VersionedMemorySource):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.opened: list[ObjectRef] = []

    def open(self, ref: ObjectRef):
        self.opened.append(ref)
        return super().open(ref)


def test_a_versioned_locked_bucket_reports_the_same_history_from_the_state(tmp_path):
    """Versions, delete markers and Object Lock retention: the same records with the state as without."""
    trail = generate(hours=6, seed=5)
    for obj in trail.objects.values():
        obj.meta = replace(obj.meta, lock_mode="COMPLIANCE", lock_until=obj.meta.last_modified + timedelta(days=30))
    log = T.log_at(trail, R1, 1)
    original = StoredObject(log.meta, log.body)
    T.modify_log(trail, log.ref)
    digest = T.digest_at(trail, R2, 2)
    restored = T.log_at(trail, R2, 3)  # rewritten, then put back: the current version is CloudTrail's
    forged = StoredObject(restored.meta, restored.body + b"forged")
    older = {log.ref: [original], digest.ref: [trail.objects.pop(digest.ref)], restored.ref: [forged]}
    deleted = {digest.ref: trail.acquired_at - timedelta(hours=3)}
    protection = BucketProtection("Enabled", True, "COMPLIANCE", days=30)

    def source():
        return CountingVersioned(trail, older=older, deleted=deleted, protection=protection)

    v = Validation(source(), RunConfig(trail=TrailArn.parse(trail.arn), workers=4), None, None,
                   now=trail.acquired_at)
    plain = Run(list(v.records()), v.summary)  # no state at all
    state = tmp_path / "s.db"
    run_state(trail, state, source=source())
    second, src = run_state(trail, state, source=source())
    assert second.summary.from_state["log"] > 0
    assert digest.ref not in src.opened or src.opened.count(digest.ref) == 1
    strip = lambda run: sorted((json.dumps({k: v for k, v in r.to_json().items() if k != "from_state"},
                                           sort_keys=True) for r in run.records), key=str)
    assert strip(second) == strip(plain)
    assert second.exit_code == plain.exit_code == 1
    assert second.summary.history == plain.summary.history and plain.summary.history["immutable"] > 0
    back = next(r for r in second.logs if r.key == restored.ref.key)
    assert back.from_state and [v["status"] for v in back.to_json()["versions"]] == ["valid", "invalid"]


PARITY_TAMPERS = [
    "modify-log:us-east-1:1", "delete-log:eu-west-1:2", "truncate-log:us-east-1:3", "trailing-log:eu-west-1:0",
    "inject-log:us-east-1:3", "reencrypt-log:eu-west-1:1", "modify-digest:us-east-1:2", "delete-digest:us-east-1:2",
    "delete-digest:eu-west-1:1:2", "delete-tail:1.5", "replay-digest:us-east-1:2", "strip-metadata:eu-west-1:3",
    "corrupt-digest:us-east-1:4", "unknown-key:eu-west-1:2", "algorithm:us-east-1:1", "chain-hash:eu-west-1:3",
    "chain-signature:us-east-1:3", "reencrypt-digest:eu-west-1:4",
]


@pytest.mark.parametrize("tamper", PARITY_TAMPERS)
def test_after_any_attack_the_state_run_agrees_with_a_run_without_state(tamper, tmp_path):
    """The same verdict on every object as a run with no state, whatever was done between the runs (every
    rewrite gets a new last-modified, as S3 gives it); the state may only add what it alone knows."""
    trail = generate(hours=6, seed=9, kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/trail",
                     bucket_default_key="arn:aws:kms:us-east-1:111122223333:key/default")
    state = tmp_path / "s.db"
    run_state(trail, state)
    before = {r: (o.meta, o.body) for r, o in trail.objects.items()}
    T.apply_named(trail, tamper)
    for ref, obj in trail.objects.items():
        if before.get(ref) != (obj.meta, obj.body):
            obj.meta = replace(obj.meta, last_modified=trail.acquired_at - timedelta(minutes=30))
    v = Validation(MemorySource(trail), RunConfig(trail=TrailArn.parse(trail.arn), workers=4), None, None,
                   now=trail.acquired_at)
    plain = Run(list(v.records()), v.summary)
    second, _ = run_state(trail, state)

    def verdicts_of(run):
        return {(r.kind, r.key, r.start_time if r.key is None else None): (r.verdict.status, r.verdict.reason)
                for r in run.records if r.kind != "gap"}

    with_state, without = verdicts_of(second), verdicts_of(plain)
    assert {k: with_state.get(k) for k in without} == without
    extra = {k: v for k, v in with_state.items() if k not in without}
    assert all(v in (("missing", "not_found"), ("missing", "region_missing")) for v in extra.values()), extra
    assert second.exit_code == plain.exit_code or (extra and second.exit_code == 1)
    assert [g.to_json() for g in second.gaps] == [g.to_json() for g in plain.gaps]
