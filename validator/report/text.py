"""The AWS CLI's text lines and summary, plus lines for what it does not report."""

from __future__ import annotations

from typing import IO

from ..model import format_time
from .safe import printable
from ..results import INVALID, MISSING, PENDING, VALID, DigestRecord, GapRecord, LogRecord, ObjectRecord, Record, Summary

_LABEL = {INVALID: "INVALID", MISSING: "INVALID", "unverifiable": "UNVERIFIABLE", "warning": "WARNING",
          PENDING: "PENDING"}


class TextReporter:
    def __init__(self, out: IO[str], err: IO[str], verbose: bool):
        self.out, self.err, self.verbose = out, err, verbose
        self._double = False

    def start(self, header: dict) -> None:
        start = header.get("start_time") or "the oldest digest"
        self.out.write(f"Validating log files for trail {header['trail_arn']} between {start} and "
                       f"{header['end_time']}\n\n")

    def _status(self, line: str, problem: bool) -> None:
        if problem:
            self.err.write(line + "\n\n" if self._double else "\n" + line + "\n\n")
            self._double = True
        elif self.verbose:
            self._double = False
            self.out.write(line + "\n")

    def record(self, r: Record) -> None:
        if isinstance(r, GapRecord):
            line = (f"No log files were delivered by CloudTrail between {format_time(r.start_time)} and "
                    f"{format_time(r.end_time)} ({r.account_id} {r.region})")
            line += "; " + printable(explained_text(r.explained_by))
            self._status(line, True)
            return
        v = r.verdict
        if isinstance(r, DigestRecord):
            what = "(backfill) Digest file" if r.backfill else "Digest file"
            where = (f"s3://{r.bucket}/{r.key}" if r.key else
                     f"(key unknown: {r.account_id} {r.region} {format_time(r.start_time)} to {format_time(r.end_time)})")
        elif isinstance(r, ObjectRecord):
            what, where = "Object", f"s3://{r.bucket}/{r.key}"
        else:
            assert isinstance(r, LogRecord)
            what, where = "Log file", f"s3://{r.bucket}/{r.key}"
        where = printable(where)
        notes = ["\n\t" + printable(n[2:]) for n in history_lines(getattr(r, "extra", None))]
        altered = bool(notes) and any(k in (r.extra or {}) for k in ("versions", "deleted", "rewritten"))
        if v.status == VALID:
            # a rewritten object whose current version verifies is still news for an incident responder
            self._status(f"{what}\t{where}\tvalid" + "".join(notes), altered)
            return
        label = _LABEL[v.status]
        message = printable(_aws_message(r, v.reason, v.message))
        self._status(f"{what}\t{where}\t{label}: {message}" + "".join(notes), v.status != PENDING or altered)

    def finish(self, s: Summary) -> None:
        w = self.out.write
        if not self._double:
            w("\n")
        w(f"Results requested for {format_time(s.requested_start) or 'the oldest digest'} to "
          f"{format_time(s.requested_end)}\n")
        if not s.digests and not s.logs:
            w("No digests found\n")
        else:
            if s.found_start and s.found_end:
                w(f"Results found for {format_time(s.found_start)} to {format_time(s.found_end)}:\n")
            else:
                w("No valid digests found in range\n")
            regular = s.digests.copy()
            regular.subtract(s.backfill_digests)
            _ratio(w, regular, "digest")
            _ratio(w, s.backfill_digests, "backfill digest")
            _ratio(w, s.logs, "log")
            w("\n")
        if s.gaps:
            w(f"\n{s.gaps} gap(s) in the digest chain (logging stopped and restarted)\n")
        if len(s.accounts) > 1:  # an organization trail: each member account's share
            w("\nPer account:\n")
            for acct, t in sorted(s.accounts.items()):
                w(f"  {acct}: {_counts(t.digests, 'digest')}; {_counts(t.logs, 'log')}"
                  + (f"; {t.gaps} gap(s)" if t.gaps else "") + "\n")
        if s.objects:
            w(f"{sum(s.objects.values())} stray object(s) in the trail's folders\n")
        if s.protection:
            w(protection_text(s.protection) + "\n")
        if s.history:
            label = {"deleted": "deleted object(s) with a surviving version", "rewritten": "rewritten object(s)",
                     "immutable": "object(s) under COMPLIANCE retention"}
            w("History: " + ", ".join(f"{n} {label.get(k, k)}" for k, n in sorted(s.history.items())) + "\n")
        anchor = {"aws": "public keys from CloudTrail ListPublicKeys", "file": "public keys from --public-keys",
                  "evidence": "public keys stored in the evidence directory (not a trust anchor on their own)"}
        w(f"Trust: {anchor.get(s.public_keys, s.public_keys)}")
        if s.manifest_sha256:
            w(f"; evidence manifest SHA-256 {s.manifest_sha256}")
        w("\n")
        if s.from_state:
            w(f"State: {s.from_state.get('digest', 0)} digest and {s.from_state.get('log', 0)} log files unchanged "
              "since the state's record, judged from it without a GET\n")
        if s.interrupted:
            w("Interrupted: the results above are partial.\n")
        self.out.flush()
        self.err.flush()


def history_lines(extra: dict | None) -> list[str]:
    """Indented lines under a record: its deletion, each version's verdict, its retention."""
    if not extra:
        return []
    out = []
    deleted = extra.get("deleted")
    if isinstance(deleted, dict):
        out.append(f"\n\tdeleted at {deleted.get('at')} (delete marker {deleted.get('version_id')})")
    for x in extra.get("versions") or ():
        state = "delete marker" if x.get("delete_marker") else (x.get("status") or "not checked") + (
            f" ({x['reason']})" if x.get("reason") else "")
        out.append(f"\n\tversion {x.get('version_id')} of {x.get('last_modified')}"
                   f"{' (current)' if x.get('is_latest') else ''}: {state}")
    ret = extra.get("retention")
    if isinstance(ret, dict):
        out.append(f"\n\tObject Lock {ret.get('mode') or 'legal hold'} until {ret.get('retain_until')}"
                   + (": cannot have been rewritten" if extra.get("immutable") else ""))
    return out


def protection_text(p: dict) -> str:
    lock = "Object Lock off"
    if p.get("object_lock"):
        period = f"{p['days']} days" if p.get("days") else f"{p['years']} years" if p.get("years") else "no default"
        lock = f"Object Lock on (default retention {p.get('mode') or 'none'}, {period})"
    return f"Bucket: versioning {p.get('versioning') or 'never enabled'}; {lock}"


def _event_text(e: dict) -> str:
    return (f"{e.get('event_name')} at {e.get('event_time')} by {e.get('principal_arn') or 'unknown'} from "
            f"{e.get('source_ip') or 'unknown'} (event {e.get('event_id') or 'without id'})")


def explanation_text(e: dict) -> str:
    """Who stopped logging, when and from where, and who restarted it (text and HTML reports alike)."""
    text = _event_text(e)
    r = e.get("restarted_by")
    if isinstance(r, dict):
        text += "; restarted by " + _event_text(r)
    return text


def explained_text(e: dict | None) -> str:
    """A gap's explanation, or that nothing explains it."""
    if not e:
        return "UNEXPLAINED: no StopLogging, DeleteTrail or UpdateTrail event in the trail's verified logs"
    return "explained by " + explanation_text(e)


def _ratio(w, counts, name: str) -> None:
    total = sum(v for v in counts.values() if v > 0)
    if total <= 0:
        return
    w(f"\n{counts.get(VALID, 0)}/{total} {name} files valid")
    bad = counts.get(INVALID, 0) + counts.get(MISSING, 0)
    if bad:
        w(f", {bad}/{total} {name} files INVALID")
    for status in ("unverifiable", "warning", PENDING):
        if counts.get(status, 0) > 0:
            w(f", {counts[status]}/{total} {name} files {status.upper()}")


def _counts(counts, name: str) -> str:
    """`9/10 digest files valid, 1 INVALID` on one line."""
    total = sum(v for v in counts.values() if v > 0)
    text = f"{counts.get(VALID, 0)}/{total} {name} files valid"
    bad = counts.get(INVALID, 0) + counts.get(MISSING, 0)
    if bad:
        text += f", {bad} INVALID"
    for status in ("unverifiable", "warning", PENDING):
        if counts.get(status, 0) > 0:
            text += f", {counts[status]} {status.upper()}"
    return text


_AWS_MESSAGES = {
    "hash_mismatch": "hash value doesn't match",
    "not_found": "not found",
    "signature_mismatch": "signature verification failed",
    "invalid_format": "invalid format",
}


def _aws_message(r: Record, reason: str | None, message: str | None) -> str:
    """The AWS CLI's wording where it has one, with our reason code and detail after it."""
    base = _AWS_MESSAGES.get(reason or "")
    if reason == "moved":
        base = "has been moved from its original location"
    detail = message or ""
    if base is None:
        return f"{reason}: {detail}" if detail else str(reason)
    if detail and detail != base and not detail.startswith(base):
        return f"{base} ({reason}: {detail})"
    return base if reason in _AWS_MESSAGES else f"{base} ({reason})"
