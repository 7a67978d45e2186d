"""A long window checked in parts (pipeline.Part) finds exactly what the whole window finds.

Parts of one day make every day's edge an edge between parts: links, holes and gaps across it, backfill
digests that list the day before's log files, log files listed by a digest of the next part. The records
(in any order: a part's come out together) and the summary must be those of the window in one piece.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from validator import pipeline
from validator.model import TrailArn
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.synth import generate
from validator.synth.memory import MemorySource
from validator.synth.tamper import apply_named

CASES = {
    "clean, a stop and backfill across midnights": dict(stops=((22, 27),), backfill_hours=(23, 47)),
    "deleted and forged digests at the edges": dict(tampers=(
        "delete-digest:us-east-1:23", "delete-digest:eu-west-1:46:3", "chain-hash:us-east-1:48",
        "inject-log:eu-west-1:24", "modify-digest:us-east-1:71", "unknown-key:eu-west-1:70",
        "corrupt-digest:us-east-1:24", "delete-log:us-east-1:30", "modify-log:eu-west-1:50")),
    "a stop of three days, a deleted tail": dict(stops=((40, 110),), tampers=("delete-tail:20",)),
    "two days of digests deleted": dict(tampers=("delete-digest:us-east-1:20:50",), logging_at_end=True),
    "the first digests deleted": dict(tampers=("delete-digest:eu-west-1:0:30",)),
}


def _trail(case: dict):
    case = dict(case)
    tampers = case.pop("tampers", ())
    trail = generate(hours=24 * 5 + 7, regions=("us-east-1", "eu-west-1"), logs_per_hour=(1, 3),
                     rotate_at_hour=60, **case)
    for t in tampers:
        apply_named(trail, t)
    return trail


def _run(trail, part_days: int, monkeypatch, **config) -> tuple[list[bytes], bytes]:
    monkeypatch.setattr(pipeline, "PART_DAYS", part_days)
    cfg = RunConfig(trail=TrailArn.parse(trail.arn), **config)
    v = Validation(MemorySource(trail), cfg, None, None, now=trail.acquired_at)
    records = [orjson.dumps(r.to_json(), option=orjson.OPT_SORT_KEYS) for r in v.records()]
    return records, orjson.dumps(v.summary.to_json(), option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("window", ["default", "explicit", "midnight"])
def test_a_window_in_parts_finds_what_the_whole_window_finds(case, window, monkeypatch):
    trail = _trail(CASES[case])
    start = trail.spec.start
    config = {"default": {}, "explicit": dict(start=start + timedelta(hours=5), end=start + timedelta(hours=110)),
              "midnight": dict(start=start + timedelta(days=1), end=start + timedelta(days=4))}[window]
    for workers in (1, 4):
        whole, whole_summary = _run(trail, 10_000, monkeypatch, workers=workers, **config)
        parts, parts_summary = _run(trail, 1, monkeypatch, workers=workers, **config)
        assert sorted(parts) == sorted(whole)
        assert parts_summary == whole_summary
        assert len(parts) == len(set(parts))  # each record once


def test_parts_are_used_and_hold_one_part_of_digests(monkeypatch):
    """The parts run (the records of a part come out together: digests of day 2 after log files of day 1)."""
    trail = _trail(CASES["clean, a stop and backfill across midnights"])
    records, _ = _run(trail, 1, monkeypatch, workers=2)
    kinds = [orjson.loads(r)["kind"] for r in records]
    first_log = kinds.index("log")
    assert "digest" in kinds[first_log:]
