"""Explaining a gap: the trail's own management events around a chain break.

A legitimate break is preceded by StopLogging, DeleteTrail or UpdateTrail on
this trail, and followed by StartLogging, CreateTrail or UpdateTrail. Only
events from log files that verified are used, so an injected log cannot
explain a gap away. An UpdateTrail ends a chain only when it disables log file
validation, moves the bucket or prefix, or turns multi-region off (and restarts
one when it enables validation or moves the bucket or prefix): an update of,
say, the SNS topic explains nothing. What it changed is in `changes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..errors import FormatError
from ..model import parse_time

STOP_EVENTS = ("StopLogging", "DeleteTrail", "UpdateTrail")
START_EVENTS = ("StartLogging", "CreateTrail", "UpdateTrail")
MAX_LOG_JSON = 256 << 20
_SLACK = timedelta(minutes=15)


@dataclass(frozen=True)
class TrailEvent:
    event_name: str
    event_time: datetime
    principal_arn: str | None
    source_ip: str | None
    event_id: str | None
    log_key: str
    changes: dict[str, Any] | None = None  # UpdateTrail: the chain-relevant parameters it set

    def to_json(self) -> dict[str, Any]:
        from ..model import format_time
        out = {"event_name": self.event_name, "event_time": format_time(self.event_time),
               "principal_arn": self.principal_arn, "source_ip": self.source_ip, "event_id": self.event_id,
               "log_key": self.log_key}
        if self.changes:
            out["changes"] = self.changes
        return out


#: UpdateTrail parameters that end a chain, and the values that do (None: any value)
_BREAKING = {"s3BucketName": None, "s3KeyPrefix": None, "enableLogFileValidation": False, "isMultiRegionTrail": False}
#: ... and those that start one
_STARTING = {"s3BucketName": None, "s3KeyPrefix": None, "enableLogFileValidation": True, "isMultiRegionTrail": True}


def _update_changes(params: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in wanted.items():
        if name in params and (value is None or params[name] is value):
            v = params[name]
            out[name] = v if isinstance(v, (bool, int)) or v is None else str(v)[:256]
    return out


def _names_trail(params: Any, trail_name: str, trail_arn: str) -> bool:
    if not isinstance(params, dict):
        return False
    name = params.get("name") or params.get("trailName")
    return isinstance(name, str) and name in (trail_name, trail_arn)


def trail_events(log_json: bytes, log_key: str, trail_name: str, trail_arn: str,
                 names: tuple[str, ...]) -> list[TrailEvent]:
    """Events named `names` that act on this trail, from one log file's JSON."""
    if len(log_json) > MAX_LOG_JSON:
        return []
    try:
        doc = orjson.loads(log_json)
    except orjson.JSONDecodeError:
        return []
    records = doc.get("Records") if isinstance(doc, dict) else None
    out = []
    for r in records if isinstance(records, list) else []:
        if not isinstance(r, dict) or r.get("eventName") not in names:
            continue
        if r.get("eventSource") not in (None, "cloudtrail.amazonaws.com"):
            continue
        if not _names_trail(r.get("requestParameters"), trail_name, trail_arn):
            continue
        changes = None
        if r["eventName"] == "UpdateTrail":
            changes = _update_changes(r["requestParameters"], _BREAKING if "StopLogging" in names else _STARTING)
            if not changes:
                continue  # an update that neither ends nor starts a chain
        try:
            when = parse_time(r.get("eventTime"))
        except FormatError:
            continue
        ident = r.get("userIdentity") if isinstance(r.get("userIdentity"), dict) else {}
        out.append(TrailEvent(
            event_name=r["eventName"], event_time=when,
            principal_arn=ident.get("arn") if isinstance(ident.get("arn"), str) else None,
            source_ip=r.get("sourceIPAddress") if isinstance(r.get("sourceIPAddress"), str) else None,
            event_id=r.get("eventID") if isinstance(r.get("eventID"), str) else None, log_key=log_key,
            changes=changes))
    return out


def explanation(stops: list[TrailEvent], starts: list[TrailEvent], gap_start: datetime,
                gap_end: datetime) -> dict[str, Any] | None:
    """The stop event nearest before the gap (with the restart after it), or None when nothing explains it."""
    before = [e for e in stops if e.event_time <= gap_start + _SLACK]
    if not before:
        return None
    stop = max(before, key=lambda e: e.event_time)
    after = [e for e in starts if e.event_time >= stop.event_time and e.event_time <= gap_end + _SLACK]
    result = stop.to_json()
    result["restarted_by"] = min(after, key=lambda e: e.event_time).to_json() if after else None
    return result

