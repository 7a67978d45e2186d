"""Engines without a cluster: partitioning, what travels to workers, the Dask driver loop, per-account totals.

The Dask driver loop runs here against a synchronous stand-in for distributed.Client (each
submitted task runs at once in this process, on an evidence directory), so that order, the
bound on work in flight and the handling of a partition whose workers keep dying are checked
without a scheduler; tests/integration/test_dask.py runs the real thing on a cluster. Nothing
here imports distributed: it would grow this process, and with it the peak RSS that the
bomb test measures of the children it starts.
"""

from __future__ import annotations

import io
import json
import pickle
import sys

import pytest
from click.testing import CliRunner

from validator.cli import main
from validator.core.keys import KeyRing
from validator.core.signing import string_to_sign, verify_signature
from validator.engines.cluster import CheckSpec, DaskEngine, partitions
from validator.errors import ConfigError, FormatError
from validator.model import TrailArn
from validator.pipeline import Validation
from validator.policy import RunConfig
from validator.report.text import TextReporter
from validator.sources.evidence import EvidenceSource
from validator.synth import generate
from validator.synth import tamper as T

from tests.helpers import run_memory


def test_partitions_are_consecutive_runs_of_one_folder_capped():
    keys = ["a/1/x", "a/1/y", "a/1/z", "a/2/x", "a/1/w", "b/1/x"]
    parts = list(partitions(keys, lambda k: k.rpartition("/")[0], limit=2))
    assert parts == [["a/1/x", "a/1/y"], ["a/1/z"], ["a/2/x"], ["a/1/w"], ["b/1/x"]]
    assert [k for p in parts for k in p] == keys  # input order, nothing lost or repeated
    assert list(partitions([], str)) == []
    day = [f"d/{i}" for i in range(72)]
    assert [len(p) for p in partitions(day, lambda k: "d", limit=64)] == [36, 36]  # shared evenly, not 64 + 8
    assert [len(p) for p in partitions(day[:65], lambda k: "d", limit=64)] == [33, 32]
    assert [k for p in partitions(day, lambda k: "d", limit=10) for k in p] == day


def test_key_ring_pickles_as_der_and_still_verifies():
    trail = generate()
    ring = KeyRing()
    from validator.sources.s3 import add_entries
    for region in trail.keys:
        add_entries(ring, trail.public_key_list(region), origin=region)
    ring.reject("00" * 16, "a lying key")
    back = pickle.loads(pickle.dumps(ring))
    assert back.fingerprints() == ring.fingerprints() and back.rejected == ring.rejected
    obj = trail.digests()[0]
    from validator.core.hashing import gunzip_bounded
    from validator.model import parse_digest
    raw, sha = gunzip_bounded(obj.body, 1 << 20)
    d = parse_digest(raw)
    assert verify_signature(back.get(d.fingerprint), string_to_sign(d, sha), obj.meta.metadata["signature"])


def test_a_pickled_key_whose_bytes_changed_is_refused():
    trail = generate()
    ring = KeyRing()
    from validator.sources.s3 import add_entries
    add_entries(ring, trail.public_key_list("us-east-1"), origin="us-east-1")
    key = next(iter(ring))
    blob = pickle.dumps(key)
    tampered = blob.replace(key.der[-8:], bytes(8))
    with pytest.raises(FormatError):
        pickle.loads(tampered)


def _validation(trail, path) -> Validation:
    trail.write_evidence(str(path))
    source = EvidenceSource(str(path))
    return Validation(source, RunConfig(trail=TrailArn.parse(trail.arn), workers=2), None, None,
                      now=trail.acquired_at)


class _Done:
    """A finished future, as distributed.Future answers it."""

    def __init__(self, fn, args, fail: BaseException | None):
        self._value, self._fail = (None, fail) if fail else (fn(*args), None)

    def result(self):
        if self._fail:
            raise self._fail
        return self._value

    def release(self):
        pass

    def cancel(self):
        pass


class KilledWorker(Exception):
    """Stands for distributed.KilledWorker (the pytest process never imports distributed: see test_dask)."""

    allowed_failures = 3


class SyncClient:
    """Runs each task at submit time; records how many futures were outstanding at most."""

    def __init__(self, kill: set[int] = frozenset()):
        self.kill = kill  # submission numbers whose workers "die" every time
        self.submitted: list[str] = []
        self.outstanding = 0
        self.max_outstanding = 0

    def nthreads(self):
        return {"tcp://w1": 1}

    def submit(self, fn, spec, part, hist, key, retries, pure):
        pickle.dumps((spec, part, hist))  # what a real client would send must pickle
        assert retries >= 1 and pure is False
        self.submitted.append(key)
        fail = None
        if len(self.submitted) in self.kill:
            fail = KilledWorker(key)
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        client = self

        class Tracked(_Done):
            def result(self):
                client.outstanding -= 1
                return super().result()
        return Tracked(fn, (spec, pickle.loads(pickle.dumps(part)), pickle.loads(pickle.dumps(hist))), fail)


def _records(v: Validation) -> list[dict]:
    return [r.to_json() for r in v.records()]


def test_dask_driver_loop_same_records_in_order_and_bounded(tmp_path):
    trail = generate(accounts=("111122223333", "444455556666"), org_id="o-abcdefghij", hours=6)
    T.apply_named(trail, "modify-log:us-east-1:2")
    T.apply_named(trail, "delete-digest:eu-west-1:3")
    local = _records(_validation(trail, tmp_path / "a"))
    client = SyncClient()
    v = _validation(trail, tmp_path / "b")
    v.engine = DaskEngine(client, in_flight=3, partition_max=4, lost_errors=(KilledWorker,))
    assert _records(v) == local
    assert client.max_outstanding <= 3
    assert len(client.submitted) == len(set(client.submitted)) > 8  # unique keys: one result taken per partition


def test_a_partition_whose_workers_keep_dying_is_unverifiable_object_by_object(tmp_path):
    trail = generate(hours=4)
    v = _validation(trail, tmp_path / "ev")
    client = SyncClient(kill={1})  # the first partition: the digests of the first region's first day
    v.engine = DaskEngine(client, in_flight=2, lost_errors=(KilledWorker,))
    recs = _records(v)
    lost = [r for r in recs if r["reason"] == "worker_lost"]
    assert lost and all(r["kind"] == "digest" and r["status"] == "unverifiable" for r in lost)
    assert len(lost) == len([o for o in trail.digests() if o.ref.key.split("/")[-5] == lost[0]["region"]])
    assert v.summary.exit_code in (1, 3)
    keys = [r["key"] for r in recs if r.get("key")]
    assert len(keys) == len(set(keys))


def test_check_spec_rebuilds_the_evidence_source_and_refuses_another_directory(tmp_path):
    trail = generate(hours=2)
    v = _validation(trail, tmp_path / "ev")
    spec = CheckSpec.of(v, profile=None)
    assert spec.token and pickle.loads(pickle.dumps(spec)).token == spec.token
    assert spec.source.open(2).manifest_sha256 == v.source.manifest_sha256
    other = generate(hours=3)
    other.write_evidence(str(tmp_path / "other"))
    moved = pickle.loads(pickle.dumps(spec.source))
    object.__setattr__(moved, "evidence_dir", str(tmp_path / "other"))
    with pytest.raises(ConfigError, match="another evidence directory"):
        moved.open(2)


def test_engine_dask_without_dask_installed_is_exit_2(tmp_path, monkeypatch):
    trail = generate(hours=2)
    trail.write_evidence(str(tmp_path / "ev"))
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    r = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", str(tmp_path / "ev"),
                                  "--output", "json", "--engine", "dask"])
    assert r.exit_code == 2
    assert "--engine dask needs Dask distributed: pip install 'ctvalidate[dask]'" in r.stderr
    assert r.stdout == ""


def test_per_account_totals_in_the_summary():
    trail = generate(accounts=("111122223333", "444455556666"), org_id="o-abcdefghij", hours=4)
    T.modify_log(trail, T.log_at(trail, "eu-west-1", 1, "444455556666").ref)
    run = run_memory(trail)
    per = run.summary.to_json()["accounts"]
    assert set(per) == {"111122223333", "444455556666"}
    assert per["444455556666"]["logs"]["invalid"] == 1 and "invalid" not in per["111122223333"]["logs"]
    assert sum(sum(t["digests"].values()) for t in per.values()) == sum(run.summary.digests.values())
    assert sum(sum(t["logs"].values()) for t in per.values()) == sum(run.summary.logs.values())
    out, err = io.StringIO(), io.StringIO()
    TextReporter(out, err, verbose=False).finish(run.summary)
    text = out.getvalue()
    assert "Per account:" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("444455556666"))
    assert "1 INVALID" in line and "digest files valid" in line
    json.dumps(run.summary.to_json())


def test_state_with_the_dask_engine_is_a_usage_error(tmp_path):
    trail = generate(hours=2)
    trail.write_evidence(str(tmp_path / "ev"))
    r = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", str(tmp_path / "ev"),
                                  "--engine", "dask", "--state", str(tmp_path / "state.db")])
    assert r.exit_code == 2 and "--state does not go with --engine dask" in r.stderr
    assert not (tmp_path / "state.db").exists()
