"""--state: which of a group's digests and log files need a GET, and what the state says of the rest.

The pipeline hands its two lists (digests to fetch, log files to hash) to `digests()` and `logs()` before its
two concurrent maps, maps only what they leave in `fetch`, and gets the records back in the original order
from `merge()`, which also writes what was verified into the state. An object is judged from its row when
the listing shows it unchanged since the row was written and the row's verdict was valid or warning:

- a digest: `check_digest` on its stored bytes and metadata with this run's keys, then the encryption and
  write-time rules on its stored metadata: exactly the checks of a GET, so the chain links (core.chain)
  run over the whole window as always and a new digest must link onto the last verified one;
- a log file: valid against the same expected hash (the digest that lists it says the same), then the
  encryption and write-time rules on its stored metadata.
Anything else is fetched: new, changed (ETag, size, last-modified, storage class, version), not listed,
recorded invalid or unverifiable, or `--recheck`. A changed object's message says what changed since the row.

Beyond the two lists: a verified log file's control events are kept for explaining gaps (`log_json`), what
the state vouched for and is gone is reported (`after_group`: log files deleted with their digest;
`vanished_chains`: whole regions), and objects judged from a row go through the history hooks
(validator.history: Object Lock retention, older versions) as a GET would have.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Iterator, TypeVar

import orjson

from .core.explain import START_EVENTS, STOP_EVENTS
from .core.verify import CheckedDigest
from .errors import FormatError
from .model import LogFileRef, ObjectRef, format_time, parse_key, parse_time
from .results import MISSING, DigestRecord, LogRecord, Verdict
from .state import Binding, ObservingSource, Row, StateStore, changed_note, digest_row, listing_changes, log_row

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Validation

T = TypeVar("T")
R = TypeVar("R")
HASH_ALGORITHMS = ("SHA-256", "SHA256")


@dataclass
class Split(Generic[T, R]):
    """One list split in two: `kept` (index -> result from the state), `fetch` (the rest, in order)."""

    items: list[T]
    kept: dict[int, R] = field(default_factory=dict)
    fetch: list[T] = field(default_factory=list)
    record: Any = None  # (index, item, result) -> None: writes what a GET verified into the state

    def merge(self, fetched: list[R]) -> list[R]:
        out: list[R] = []
        it = iter(fetched)
        for i, item in enumerate(self.items):
            if i in self.kept:
                out.append(self.kept[i])
                continue
            result = next(it)
            self.record(i, item, result)
            out.append(result)
        return out


class Incremental:
    """The state's side of one validation run."""

    def __init__(self, validation: "Validation", store: StateStore, recheck: bool = False):
        self.v = validation
        self.store = store
        self.recheck = recheck
        self.obs: ObservingSource | None = None
        self._kept_logs: set[ObjectRef] = set()  # this group's log files judged from the state

    def observe(self, source: Any) -> ObservingSource:
        self.obs = ObservingSource(source)
        return self.obs

    def bind(self) -> None:
        v = self.v
        kind = "evidence" if getattr(v.source, "key_origin", "aws") == "evidence" else "s3"
        self.store.bind(Binding(str(v.config.trail), v.plan.bucket, v.plan.prefix, kind, v.config.copy_of))

    # --- digests -------------------------------------------------------------------------------

    def digests(self, own: list[ObjectRef]) -> Split[ObjectRef, CheckedDigest]:
        split: Split[ObjectRef, CheckedDigest] = Split(own, record=self._record_digest)
        for i, ref in enumerate(own):
            kept = self._digest_from_state(ref)
            if kept is not None:
                split.kept[i] = kept
            else:
                split.fetch.append(ref)
        return split

    def _unchanged_row(self, ref: ObjectRef) -> Row | None:
        """The state's row of an object this run listed, when the listing shows it unchanged since."""
        listed = self.obs.listed.get(ref)
        row = self.store.get(ref)
        if row is None or listed is None:
            return None
        if listing_changes(row, listed):
            return None  # changed since the row: fetched again, and the message says what changed
        return row

    def _digest_from_state(self, ref: ObjectRef) -> CheckedDigest | None:
        row = self._unchanged_row(ref)
        if row is None or self.recheck or row.kind != "digest" or not row.trusted or row.body is None:
            return None
        name = parse_key(self.v.locations.to_original(ref).key)
        meta = row.meta()
        self.v.history.note_meta(meta)  # its Object Lock retention, as a GET would have told
        d = self.v._judge_digest(row.body, meta, ref, self.v.locations.to_original(ref),
                                 bool(name and name.backfill))
        d.from_state = True
        return d

    def _record_digest(self, i: int, ref: ObjectRef, d: CheckedDigest) -> None:
        listed = self.obs.listed.get(ref)
        d.verdict = _annotated(d.verdict, self._note_for(ref, d.verdict))
        if listed is None:
            return
        span = (d.digest.start_time, d.digest.end_time) if d.digest is not None else (None, None)
        self.store.put(digest_row(listed, self.obs.metas.get(ref), self.obs.bodies.get(ref), d.verdict.status,
                                  d.verdict.reason, d.sha256, d.signature, *span))

    # --- logs ----------------------------------------------------------------------------------

    def logs(self, to_hash: list[tuple[LogFileRef, CheckedDigest]],
             listing: tuple[str, str, str]) -> Split[tuple[LogFileRef, CheckedDigest], LogRecord]:
        folder, start_after, last_day = listing
        self.obs.prefetch(self.v.plan.bucket, folder, start_after, last_day)
        split: Split = Split(to_hash, record=self._record_log)
        self._kept_logs.clear()
        for i, item in enumerate(to_hash):
            kept = self._log_from_state(item)
            if kept is not None:
                split.kept[i] = kept
                self._kept_logs.add(ObjectRef(kept.bucket, kept.key))
            else:
                split.fetch.append(item)
        return split

    def _log_from_state(self, item: tuple[LogFileRef, CheckedDigest]) -> LogRecord | None:
        lf, d = item
        lies_at = self.v.locations.to_copy(lf.ref)
        row = self._unchanged_row(lies_at)
        if (row is None or self.recheck or row.kind != "log" or not row.trusted or row.hash != lf.hash_value
                or lf.hash_algorithm not in HASH_ALGORITHMS):
            return None
        name = parse_key(lf.ref.key)
        meta = row.meta()
        self.v.history.note_meta(meta)
        rec = LogRecord(bucket=lies_at.bucket, key=lies_at.key, verdict=self.v._judge_log_meta(meta, name),
                        digest_key=d.lies_at.key, region=name.region if name else None,
                        account_id=name.account_id if name else None, from_state=True)
        self.v.history.on_listed_log(rec, lf, lies_at)  # its older versions, where the bucket keeps any
        return rec

    def _record_log(self, i: int, item: tuple[LogFileRef, CheckedDigest], rec: LogRecord) -> None:
        lf, _ = item
        lies_at = ObjectRef(rec.bucket, rec.key)
        rec.verdict = _annotated(rec.verdict, self._note_for(lies_at, rec.verdict))
        listed = self.obs.listed.get(lies_at)
        if listed is None:
            return
        expected = lf.hash_value if rec.verdict.status in ("valid", "warning") else None
        self.store.put(log_row(listed, self.obs.metas.get(lies_at), rec.verdict.status, rec.verdict.reason,
                               expected))

    # --- control events, for explaining gaps --------------------------------------------------------

    def log_json(self, lies_at: ObjectRef) -> bytes | None:
        """For a log file judged from the state: its control events as the state kept them (no GET)."""
        if lies_at not in self._kept_logs:
            return None
        return self.store.events(lies_at)

    def keep_log_json(self, lies_at: ObjectRef, raw: bytes) -> None:
        """Keep a verified log file's control events, when the bytes read are the ones verified."""
        row = self.store.get(lies_at)
        if row is None or row.kind != "log" or not row.trusted or row.hash != hashlib.sha256(raw).hexdigest():
            return
        self.store.put_events(lies_at, control_records(raw))

    # --- what vanished ----------------------------------------------------------------------------

    def after_group(self, folder: str, window_start: datetime, out: list) -> list[LogRecord]:
        """At a group's end: log files the state recorded verified in the window that this run neither found
        nor reported (deleted with the digest that listed them: only the state knows they existed) are
        `missing`; a missing digest the state had verified says so. Then the group's memory is dropped."""
        v = self.v
        reported = {(r.bucket, r.key) for r in out if isinstance(r, LogRecord)}
        extra: list[LogRecord] = []
        for row in self.store.rows_under(v.plan.bucket, folder, "log"):
            name = parse_key(v.locations.to_original(row.ref).key)
            if (not row.trusted or name is None or name.is_digest or (row.bucket, row.key) in reported
                    or row.ref in self.obs.listed
                    or not (window_start <= name.time + timedelta(seconds=59) and name.time <= v.window_end)):
                continue
            extra.append(LogRecord(bucket=row.bucket, key=row.key, verdict=Verdict(
                MISSING, "not_found", f"not found: the state recorded it {row.status} at {row.verified_at}; it "
                "has since vanished, and no digest found now lists it"), digest_key=None, region=name.region,
                account_id=name.account_id))
        for i, r in enumerate(out):
            if isinstance(r, DigestRecord) and r.key and r.bucket and r.verdict.status == MISSING:
                row = self.store.get(ObjectRef(r.bucket, r.key))
                if row is not None and row.trusted:
                    r.verdict = _annotated(r.verdict, f"the state recorded it {row.status} at {row.verified_at}")
        self.obs.forget()
        return extra

    # --- chains gone ----------------------------------------------------------------------------

    def vanished_chains(self, already: set[tuple[str, str]] = frozenset()) -> Iterator[DigestRecord]:
        """A region (or account) whose digests the state recorded verified in the window, of which this run
        found none: its folders were deleted. Without the state only --expect-regions would tell."""
        v, cfg = self.v, self.v.config
        lo, hi = cfg.start, v.window_end
        groups: dict[tuple[str, str], list[datetime]] = {}
        for key, start, end in self.store.trusted_digest_spans(v.plan.bucket):
            name = parse_key(v.locations.to_original(ObjectRef(v.plan.bucket, key)).key)
            s, e = _time(start), _time(end)
            if name is None or s is None or e is None or (lo is not None and e < lo) or s > hi:
                continue
            span = groups.setdefault((name.account_id, name.region), [s, e, 0])
            span[0], span[1], span[2] = min(span[0], s), max(span[1], e), span[2] + 1
        for (account, region), (s, e, n) in sorted(groups.items()):
            if ((account, region) in v._chains_seen or (account, region) in already
                    or account in v.plan.missing_accounts or (cfg.regions is not None and region not in cfg.regions)
                    or (cfg.account_id is not None and account != cfg.account_id)):
                continue
            yield DigestRecord(bucket=None, key=None, region=region, account_id=account, verdict=Verdict(
                MISSING, "region_missing", f"the state recorded {n} verified digest(s) of this region from "
                f"{format_time(s)} to {format_time(e)}; none of them is there now (its folders were deleted)"),
                start_time=max(s, lo) if lo else s, end_time=min(e, hi))

    # --- messages --------------------------------------------------------------------------------

    def _note_for(self, ref: ObjectRef, verdict: Verdict) -> str | None:
        """What the state knew of an object fetched again: changed since its row, or gone though recorded."""
        row = self.store.get(ref)
        if row is None:
            return None
        listed = self.obs.listed.get(ref)
        if listed is not None:
            return changed_note(row, listing_changes(row, listed))
        if verdict.reason == "not_found":
            return f"the state recorded it {row.status} at {row.verified_at}; it has since vanished"
        return None


def _annotated(verdict: Verdict, note: str | None) -> Verdict:
    if not note:
        return verdict
    message = f"{verdict.message}; {note}" if verdict.message else note
    return replace(verdict, message=message)


__all__ = ["Incremental", "Split"]


def control_records(log_json: bytes) -> bytes:
    """The log's records that could explain a gap (core.explain's event names, CloudTrail's source), as a
    log document: core.explain.trail_events finds in it exactly what it finds in the whole log."""
    try:
        doc = orjson.loads(log_json)
    except orjson.JSONDecodeError:
        return b'{"Records":[]}'
    records = doc.get("Records") if isinstance(doc, dict) else None
    names = set(STOP_EVENTS) | set(START_EVENTS)
    kept = [r for r in records if isinstance(r, dict) and r.get("eventName") in names
            and r.get("eventSource") in (None, "cloudtrail.amazonaws.com")] if isinstance(records, list) else []
    return orjson.dumps({"Records": kept})


def _time(text: str | None) -> datetime | None:
    try:
        return parse_time(text) if text else None
    except FormatError:
        return None
