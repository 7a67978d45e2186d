"""The CloudTrail calls only `inspect` makes (GetEventSelectors, ListTrails), through S3Source's clients.

Each returns the raw answer or the reason it could not be had; judging it is core.inspect's business.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..model import TrailArn
from .s3 import S3Source, _describe

MAX_TRAIL_PAGES = 100


def event_selectors(source: S3Source, arn: TrailArn) -> tuple[dict[str, Any] | None, str | None]:
    """GetEventSelectors of the trail, in its home region: (answer, None) or (None, why not)."""
    try:
        resp = source.client("cloudtrail", arn.home_region).get_event_selectors(TrailName=str(arn))
    except (ClientError, BotoCoreError) as exc:
        return None, f"GetEventSelectors failed ({_describe(exc)})"
    return resp, None


def list_trails(source: S3Source, region: str) -> tuple[list[dict[str, Any]], str | None]:
    """Every page of ListTrails in `region`: (entries, None) or (what was had, why it stopped)."""
    ct = source.client("cloudtrail", region)
    entries: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    seen: set[str] = set()
    for _ in range(MAX_TRAIL_PAGES):
        try:
            resp = ct.list_trails(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            return entries, f"ListTrails in {region} failed ({_describe(exc)})"
        entries += [t for t in resp.get("Trails") or () if isinstance(t, dict)]
        token = resp.get("NextToken")
        if not token or token in seen:
            return entries, None
        seen.add(token)
        kwargs["NextToken"] = token
    return entries, f"ListTrails in {region} returned more than {MAX_TRAIL_PAGES} pages"
