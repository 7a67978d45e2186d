"""Statuses, reasons and result records: the report writers' only input."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .model import format_time

VALID = "valid"
INVALID = "invalid"
MISSING = "missing"
UNVERIFIABLE = "unverifiable"
WARNING = "warning"
PENDING = "pending"

# most severe first (the contract's order)
SEVERITY = (INVALID, MISSING, UNVERIFIABLE, WARNING, PENDING, VALID)
_RANK = {s: i for i, s in enumerate(SEVERITY)}


def more_severe(a: str, b: str) -> bool:
    """True when status `a` outranks status `b`."""
    return _RANK[a] < _RANK[b]


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    reason: str | None = None
    message: str | None = None

    @classmethod
    def valid(cls, message: str | None = None) -> "Verdict":
        return cls(VALID, None, message)

    def worse(self, other: "Verdict") -> "Verdict":
        """The most severe of two verdicts on one object (the first wins a tie)."""
        return other if more_severe(other.status, self.status) else self


@dataclass(slots=True)
class DigestRecord:
    bucket: str | None
    key: str | None
    region: str
    account_id: str
    verdict: Verdict
    start_time: datetime | None = None
    end_time: datetime | None = None
    fingerprint: str | None = None
    backfill: bool = False
    log_count: int | None = None
    kind: str = "digest"
    extra: dict[str, Any] | None = None  # forensic fields where they apply: versions, deleted, rewritten, retention
    from_state: bool = False  # --state: unchanged since the state's record, judged from it without a GET

    def to_json(self) -> dict[str, Any]:
        return _with_extra(self.extra, {
            "kind": "digest", "status": self.verdict.status, "reason": self.verdict.reason,
            "bucket": self.bucket, "key": self.key, "region": self.region, "account_id": self.account_id,
            "start_time": format_time(self.start_time), "end_time": format_time(self.end_time),
            "fingerprint": self.fingerprint, "backfill": self.backfill, "log_count": self.log_count,
            "message": self.verdict.message,
        }, from_state=self.from_state)


@dataclass(slots=True)
class LogRecord:
    bucket: str
    key: str
    verdict: Verdict
    digest_key: str | None = None
    region: str | None = None
    account_id: str | None = None
    kind: str = "log"
    extra: dict[str, Any] | None = None  # as DigestRecord.extra
    from_state: bool = False  # --state: unchanged since the state's record, judged from it without a GET

    def to_json(self) -> dict[str, Any]:
        return _with_extra(self.extra, {
            "kind": "log", "status": self.verdict.status, "reason": self.verdict.reason,
            "bucket": self.bucket, "key": self.key, "digest_key": self.digest_key,
            "region": self.region, "account_id": self.account_id, "message": self.verdict.message,
        }, from_state=self.from_state)


def _with_extra(extra: dict[str, Any] | None, base: dict[str, Any], from_state: bool = False) -> dict[str, Any]:
    """The contract's fields, then the forensic extensions (never overriding a contract field); with --state,
    `from_state: true` on a record judged from the state's record of it (absent otherwise)."""
    if extra:
        base.update({k: v for k, v in extra.items() if k not in base})
    if from_state:
        base["from_state"] = True
    return base


@dataclass(slots=True)
class GapRecord:
    region: str
    account_id: str
    start_time: datetime
    end_time: datetime
    explained_by: dict[str, Any] | None = None
    message: str | None = None
    kind: str = "gap"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "gap", "region": self.region, "account_id": self.account_id,
            "start_time": format_time(self.start_time), "end_time": format_time(self.end_time),
            "explained_by": self.explained_by, "message": self.message,
        }


@dataclass(slots=True)
class ObjectRecord:
    """Anything else found in the trail's folders (a stray object): reported, never part of the chain."""

    bucket: str
    key: str
    verdict: Verdict
    kind: str = "object"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "object", "status": self.verdict.status, "reason": self.verdict.reason,
                "bucket": self.bucket, "key": self.key, "message": self.verdict.message}


Record = DigestRecord | LogRecord | GapRecord | ObjectRecord


@dataclass(slots=True)
class AccountTotals:
    """One member account's share of the summary (organization trails: one line per account)."""

    digests: Counter = field(default_factory=Counter)
    logs: Counter = field(default_factory=Counter)
    gaps: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"digests": dict(sorted(self.digests.items())), "logs": dict(sorted(self.logs.items())),
                "gaps": self.gaps}


@dataclass(slots=True)
class Summary:
    requested_start: datetime | None
    requested_end: datetime
    found_start: datetime | None = None
    found_end: datetime | None = None
    digests: Counter = field(default_factory=Counter)
    logs: Counter = field(default_factory=Counter)
    gaps: int = 0
    unexplained_gaps_fail: bool = False
    failing_gaps: int = 0
    public_keys: str = "file"
    manifest_sha256: str | None = None
    interrupted: bool = False
    backfill_digests: Counter = field(default_factory=Counter)
    objects: Counter = field(default_factory=Counter)
    protection: dict[str, Any] | None = None  # the bucket's versioning and Object Lock, where known
    history: Counter = field(default_factory=Counter)  # "deleted", "rewritten", "immutable" records
    from_state: Counter = field(default_factory=Counter)  # "digest"/"log" -> records judged from the state
    state_sha256: str | None = None  # --state: the state file's SHA-256 after the run (the next anchor)
    state_used: bool = False  # --state given: the summary says what came from it
    accounts: dict[str, AccountTotals] = field(default_factory=dict)  # account id -> its totals

    def _account(self, account_id: str | None) -> AccountTotals:
        key = account_id or "unknown"
        totals = self.accounts.get(key)
        if totals is None:
            totals = self.accounts[key] = AccountTotals()
        return totals

    def add(self, record: Record) -> None:
        if getattr(record, "from_state", False):
            self.from_state[record.kind] += 1
        extra = getattr(record, "extra", None)
        if extra:
            for name in ("deleted", "rewritten", "immutable"):
                if extra.get(name):
                    self.history[name] += 1
        if isinstance(record, DigestRecord):
            self.digests[record.verdict.status] += 1
            self._account(record.account_id).digests[record.verdict.status] += 1
            if record.backfill:
                self.backfill_digests[record.verdict.status] += 1
            if record.verdict.status in (VALID, WARNING) and record.start_time and record.end_time:
                s = max(record.start_time, self.requested_start) if self.requested_start else record.start_time
                e = min(record.end_time, self.requested_end)
                self.found_start = s if self.found_start is None else min(self.found_start, s)
                self.found_end = e if self.found_end is None else max(self.found_end, e)
        elif isinstance(record, LogRecord):
            self.logs[record.verdict.status] += 1
            self._account(record.account_id).logs[record.verdict.status] += 1
        elif isinstance(record, ObjectRecord):
            self.objects[record.verdict.status] += 1
        elif isinstance(record, GapRecord):
            self.gaps += 1
            self._account(record.account_id).gaps += 1
            if self.unexplained_gaps_fail and record.explained_by is None:
                self.failing_gaps += 1

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        statuses = set(self.digests) | set(self.logs) | set(self.objects)
        if INVALID in statuses or MISSING in statuses or self.failing_gaps:
            return 1
        if UNVERIFIABLE in statuses or WARNING in statuses:
            return 3
        return 0

    def to_json(self) -> dict[str, Any]:
        doc = self._to_json()
        if self.state_used:  # only then, so that runs without --state keep their exact shape
            doc["trust"]["state_sha256"] = self.state_sha256
            doc["from_state"] = {"digests": self.from_state.get("digest", 0), "logs": self.from_state.get("log", 0)}
        return doc

    def _to_json(self) -> dict[str, Any]:
        return {
            "kind": "summary",
            "requested": {"start_time": format_time(self.requested_start), "end_time": format_time(self.requested_end)},
            "found": {"start_time": format_time(self.found_start), "end_time": format_time(self.found_end)},
            "digests": dict(sorted(self.digests.items())),
            "logs": dict(sorted(self.logs.items())),
            "gaps": self.gaps,
            "objects": dict(sorted(self.objects.items())),
            "accounts": {a: t.to_json() for a, t in sorted(self.accounts.items())},
            "trust": {"public_keys": self.public_keys, "manifest_sha256": self.manifest_sha256},
            **({"versioning": self.protection.get("versioning"),
                "object_lock": {"enabled": self.protection.get("object_lock"),
                                **{k: self.protection.get(k) for k in ("mode", "days", "years")}}}
               if self.protection else {}),
            **({"history": dict(sorted(self.history.items()))} if self.history else {}),
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
        }
