"""What a versioned bucket remembers: overwritten versions, delete markers, Object Lock retention.

CloudTrail writes each object once. In a versioned bucket an overwrite leaves the
older version behind and a delete leaves a delete marker over it, so the bucket
itself tells what was rewritten or deleted, when, and what the object held before.
This module, driven by the pipeline through small hooks, per (account, region):

 1. lists the versions of the group's digest and log folders (ListObjectVersions,
    from the same key marker as the listing) and keeps only keys with a history
    (several versions, or a delete marker on top): memory follows what was
    altered, not the size of the bucket;
 2. adds the deleted digests of this trail to the digests to check, and recovers a
    deleted digest from its newest surviving version that verifies (an attacker's
    upload before the delete does not hide CloudTrail's own). The recovered digest takes
    its place in the chain: its signature is verified, its chain links are checked
    against its neighbours, and the log files it lists are checked against it
    (coverage is restored), but its record stays `missing`/`not_found`, since the
    history as it stands was altered;
 3. gives every version of an altered digest or log its own verdict (a log's older
    versions against the hash its digest lists); the current version decides the
    record's status;
 4. reports Object Lock retention found on the objects read (from the GET
    response's headers: no extra request), and says when a version under
    COMPLIANCE retention cannot have been rewritten.

Records get `versions`, `deleted`, `rewritten`, `retention` and `immutable` only
where they apply (an extension of the JSON Lines contract).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .errors import SourceError
from .model import LogFileRef, ObjectMeta, ObjectRef, format_time, parse_key
from .results import MISSING, DigestRecord, LogRecord, Record, Verdict
from .sources.base import BucketProtection, ObjectStream, ObjectVersion

if TYPE_CHECKING:
    from .core.verify import CheckedDigest
    from .pipeline import Group, Validation

#: altered keys kept per group; past it the rest are not looked at (and the run says so)
MAX_ALTERED_KEYS = 200_000
#: versions of one key that are kept and checked (the newest); an attacker may write millions
MAX_VERSIONS_PER_KEY = 100
#: how close retain-until minus the default retention must be to the write time to count as "since written"
RETENTION_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Recovered:
    """A deleted object and the newest version that survives under its delete marker."""

    marker: ObjectVersion
    version: ObjectVersion


def _version_json(v: ObjectVersion, verdict: Verdict | None) -> dict[str, Any]:
    return {"version_id": v.version_id, "last_modified": format_time(v.last_modified), "is_latest": v.is_latest,
            "delete_marker": v.delete_marker, "size": v.size, "etag": v.etag,
            "status": verdict.status if verdict else None, "reason": verdict.reason if verdict else None,
            "message": verdict.message if verdict and verdict.status != "valid" else None}


def _verdict_text(v: Verdict | None) -> str:
    if v is None:
        return "not checked"
    return v.status if v.reason is None else f"{v.status} ({v.reason})"


class History:
    """Versions, delete markers and retention for one validation run (state is per group)."""

    def __init__(self, validation: "Validation", protection: BucketProtection | None):
        self.v = validation
        self.protection = protection
        self.keys: dict[ObjectRef, list[ObjectVersion]] = {}
        self.recovered: dict[ObjectRef, Recovered] = {}
        self.locks: dict[ObjectRef, ObjectMeta] = {}
        self.more_versions: dict[ObjectRef, int] = {}  # versions past MAX_VERSIONS_PER_KEY, per key
        self.problems: list[str] = []
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.protection is not None and self.protection.keeps_versions

    # --- 1. the group's altered keys ---------------------------------------------------------

    def load(self, group: "Group", root: str) -> None:
        self.keys, self.recovered, self.locks, self.more_versions = {}, {}, {}, {}
        if not self.enabled:
            return
        margin = timedelta(hours=2)
        for kind, back in (("CloudTrail-Digest", margin), ("CloudTrail", timedelta(days=1))):
            folder = f"{root}{kind}/{group.region}/"
            try:
                self._load_folder(folder, back, margin)
            except SourceError as exc:  # e.g. no s3:ListBucketVersions: the validation goes on without history
                self.problems.append(f"the versions of s3://{self.v.plan.bucket}/{folder} could not be listed "
                                     f"({exc}): deleted and overwritten objects there are not looked for")
                self.keys = {r: x for r, x in self.keys.items() if not r.key.startswith(folder)}
                self.recovered = {}

    def _load_folder(self, folder: str, back: timedelta, margin: timedelta) -> None:
        """The altered keys of one folder, from the day the listing starts to the window's end."""
        cfg, v = self.v.config, self.v
        last_day = (v.window_end + margin).strftime("%Y/%m/%d")
        marker = folder + (cfg.start - back).strftime("%Y/%m/%d") if cfg.start else None
        for versions in _by_key(v.source.list_versions(v.plan.bucket, folder, marker), self.more_versions):
            if versions[0].ref.key[len(folder):len(folder) + 10] > last_day:
                break
            if len(versions) > 1 or versions[0].delete_marker:
                if len(self.keys) >= MAX_ALTERED_KEYS:
                    self.problems.append(f"more than {MAX_ALTERED_KEYS} altered objects in {folder}: "
                                         "the history of the rest is not reported")
                    break
                self.keys[versions[0].ref] = versions

    def deleted_digests(self, group: "Group", listed: list[ObjectRef]) -> list[ObjectRef]:
        """This trail's digests whose current state is a delete marker over a surviving version."""
        trail, seen, out = self.v.config.trail, set(listed), []
        for ref, versions in sorted(self.keys.items()):
            name = parse_key(self.v.locations.to_original(ref).key)
            if (ref in seen or name is None or not name.is_digest or name.region != group.region
                    or name.trail_name != trail.name or name.home_region != trail.home_region):
                continue
            if versions[0].delete_marker and any(not x.delete_marker for x in versions):
                out.append(ref)
        return out

    # --- 2. recovering a deleted digest --------------------------------------------------------

    def _recoverable(self, lies_at: ObjectRef) -> Recovered | None:
        versions = self.keys.get(lies_at)
        if not versions or not versions[0].delete_marker:
            return None
        survivor = next((x for x in versions if not x.delete_marker), None)
        return Recovered(versions[0], survivor) if survivor else None

    def recover_digest(self, lies_at: ObjectRef) -> "CheckedDigest | None":
        """The newest surviving version that verifies (else the newest), checked as the digest itself."""
        rc = self._recoverable(lies_at)
        if rc is None:
            return None
        first = None
        for x in (x for x in self.keys[lies_at] if not x.delete_marker):
            d = self.v._fetch_digest(lies_at, opener=self._opener(lies_at, x))
            first = first or (d, x)
            if d.trusted:
                break
        else:
            d, x = first  # type: ignore[misc]
        with self._lock:
            self.recovered[lies_at] = Recovered(rc.marker, x)
        return d

    def _opener(self, ref: ObjectRef, version: ObjectVersion) -> Callable[[], ObjectStream]:
        return lambda: self.v.source.open_version(ref, version.version_id)

    # --- 3. verdicts on versions -----------------------------------------------------------------

    def on_digest_record(self, rec: DigestRecord, d: "CheckedDigest") -> None:
        versions = self.keys.get(d.lies_at)
        if not versions:
            return
        rc = self.recovered.get(d.lies_at)
        verdicts: list[tuple[ObjectVersion, Verdict | None]] = []
        for x in versions:
            if x.delete_marker:
                verdicts.append((x, None))
            elif rc is not None and x.version_id == rc.version.version_id:
                verdicts.append((x, d.verdict))  # after the chain checks: it stood in the chain
            elif x.is_latest:
                verdicts.append((x, rec.verdict))
            else:
                verdicts.append((x, self._digest_version_verdict(d, x)))
        self._attach(rec, verdicts, rc)

    def _digest_version_verdict(self, d: "CheckedDigest", x: ObjectVersion) -> Verdict:
        """An older version on its own: format, signature, encryption (its chain is the current one's)."""
        return self.v._fetch_digest(d.lies_at, opener=self._opener(d.lies_at, x)).verdict

    def on_listed_log(self, rec: LogRecord, lf: LogFileRef, lies_at: ObjectRef) -> None:
        versions = self.keys.get(lies_at)
        if not versions:
            return
        name = parse_key(lf.ref.key)
        rc = self._recoverable(lies_at)
        verdicts: list[tuple[ObjectVersion, Verdict | None]] = []
        for x in versions:
            if x.delete_marker:
                verdicts.append((x, None))
            elif x.is_latest:
                verdicts.append((x, rec.verdict))
            else:  # against the hash the digest lists: which version CloudTrail wrote
                verdicts.append((x, self.v._hash_log(lies_at, lf, name, opener=self._opener(lies_at, x))))
        self._attach(rec, verdicts, rc)

    def _attach(self, rec: DigestRecord | LogRecord, verdicts: list[tuple[ObjectVersion, Verdict | None]],
                rc: Recovered | None) -> None:
        extra = rec.extra if rec.extra is not None else {}
        extra["versions"] = [_version_json(x, vd) for x, vd in verdicts]
        more = self.more_versions.get(ObjectRef(str(rec.bucket), str(rec.key)))
        if more:
            extra["more_versions"] = more  # older than the ones listed, not checked
        objects = [x for x, _ in verdicts if not x.delete_marker]
        notes = []
        if rc is not None:
            survivor = next(vd for x, vd in verdicts if x.version_id == rc.version.version_id)
            extra["deleted"] = {"at": format_time(rc.marker.last_modified), "version_id": rc.marker.version_id}
            notes.append(f"deleted at {format_time(rc.marker.last_modified)} (delete marker {rc.marker.version_id}); "
                         f"its surviving version {rc.version.version_id} of {format_time(rc.version.last_modified)} "
                         f"is {_verdict_text(survivor)}")
            rec.verdict = Verdict(MISSING, "not_found", "; ".join(notes))
        if len(objects) > 1:
            extra["rewritten"] = True
            if rc is None:
                notes.append(f"rewritten: {len(objects)} versions; the current one is "
                             f"{_verdict_text(rec.verdict)}")
                base = rec.verdict.message
                rec.verdict = Verdict(rec.verdict.status, rec.verdict.reason,
                                      f"{base}; {notes[-1]}" if base else notes[-1])
        rec.extra = extra

    # --- 4. retention, and what the rest of the group's records need ------------------------------

    def note_meta(self, meta: ObjectMeta) -> None:
        if meta.lock_mode or meta.legal_hold == "ON":
            self.locks[meta.ref] = meta

    def annotate(self, out: list[Record], window_start: datetime) -> list[Record]:
        """Versions of records the hooks did not see (logs no digest lists), retention on every record,
        and a record for each deleted log file no record names. Returns the records to add."""
        named: set[ObjectRef] = set()
        for rec in out:
            self.annotate_one(rec, named)
        return self.unnamed_deleted(named, window_start)

    def annotate_one(self, rec: Record, named: set[ObjectRef]) -> None:
        """One record, as it goes out: its versions (when no hook attached them) and its retention. `named`
        collects the altered keys records name (the only ones `unnamed_deleted` asks about)."""
        if not isinstance(rec, (DigestRecord, LogRecord)) or rec.key is None or rec.bucket is None:
            return
        ref = ObjectRef(rec.bucket, rec.key)
        if ref in self.keys:
            named.add(ref)
        versions = self.keys.get(ref)
        if versions:
            if rec.extra is None or "versions" not in rec.extra:
                self._attach(rec, [(x, rec.verdict if x.is_latest and not x.delete_marker else None)
                                   for x in versions], self._recoverable(ref))
        meta = self.locks.get(ref)
        if meta is not None:
            self._retention(rec, meta)

    def unnamed_deleted(self, named: set[ObjectRef], window_start: datetime) -> list[Record]:
        """A record for each deleted log file of the window that no record names, with its versions."""
        added: list[Record] = []
        for ref, versions in sorted(self.keys.items()):
            name = parse_key(self.v.locations.to_original(ref).key)
            rc = self._recoverable(ref)
            if (ref in named or rc is None or name is None or name.is_digest
                    or not window_start <= name.time + timedelta(seconds=59) or name.time > self.v.window_end):
                continue
            rec = LogRecord(bucket=ref.bucket, key=ref.key, verdict=Verdict(MISSING, "not_found", "not found"),
                            digest_key=None, region=name.region, account_id=name.account_id)
            self._attach(rec, [(x, None) for x in versions], rc)
            rec.verdict = Verdict(MISSING, "not_found", rec.verdict.message + "; no digest lists it, so its "
                                  "surviving version cannot be checked")
            added.append(rec)
        return added

    def _retention(self, rec: DigestRecord | LogRecord, meta: ObjectMeta) -> None:
        now = self.v.reference_time
        in_force = meta.lock_until is not None and meta.lock_until > now
        since_write = None
        period = self.protection.period if self.protection else None
        if period is not None and meta.lock_until is not None and meta.last_modified is not None:
            since_write = abs(meta.lock_until - period - meta.last_modified) <= RETENTION_SLACK
        extra = rec.extra if rec.extra is not None else {}
        extra["retention"] = {"mode": meta.lock_mode, "retain_until": format_time(meta.lock_until),
                              "legal_hold": meta.legal_hold, "in_force": in_force, "since_write": since_write,
                              "version_id": meta.version_id}
        if meta.lock_mode == "COMPLIANCE" and in_force:
            extra["immutable"] = True
            note = (f"under COMPLIANCE retention until {format_time(meta.lock_until)}: this version cannot have "
                    "been rewritten or deleted" + (f" since it was written at {format_time(meta.last_modified)}"
                                                  if since_write else " while the retention holds"))
            base = rec.verdict.message
            rec.verdict = Verdict(rec.verdict.status, rec.verdict.reason, f"{base}; {note}" if base else note)
        rec.extra = extra


def altered(versions: Iterator[ObjectVersion], keep_all: bool = False) -> Iterator[list[ObjectVersion]]:
    """The keys of a version listing, one list each (with `keep_all`, unaltered keys too)."""
    for group in _by_key(versions):
        if keep_all or len(group) > 1 or group[0].delete_marker:
            yield group


def _by_key(versions: Iterator[ObjectVersion],
            dropped: dict[ObjectRef, int] | None = None) -> Iterator[list[ObjectVersion]]:
    """Consecutive entries of one key, as a list (a listing holds a key's versions together), at most
    MAX_VERSIONS_PER_KEY of them (the newest); how many more there were goes into `dropped`."""
    current: list[ObjectVersion] = []
    for x in versions:
        if current and x.ref != current[0].ref:
            yield current
            current = []
        if len(current) < MAX_VERSIONS_PER_KEY:
            current.append(x)
        elif dropped is not None:
            dropped[x.ref] = dropped.get(x.ref, 0) + 1
    if current:
        yield current


__all__ = ["History", "Recovered", "MAX_ALTERED_KEYS", "altered"]
