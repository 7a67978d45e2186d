"""Discovery, bounded concurrency, and the one place where exceptions become results.

One (account, region) group after another, in sorted order (with more than one worker, the digests of the
next groups are already being listed, fetched and linked while a group's log files are checked:
GROUP_LOOKAHEAD); a window longer than PART_DAYS days in parts of that many days (Part), each of them:
 1. list the trail's digests in the window (with a margin for the neighbours the
    chain checks need), fetch and verify them concurrently; each digest's log list goes to
    disk as it arrives (validator.listed), so memory does not grow with the log files of the history;
 2. follow pointers from trusted digests to predecessors not listed;
 3. link the chains (core.chain), emit digest, missing and gap records;
 4. fetch and hash the log files trusted in-range digests list, concurrently, page by page from disk,
    each record written as it comes;
 5. list the log folder one day at a time (DAYS_AHEAD days listed ahead), and classify log files no
    digest lists.
Records come out in a deterministic order, whatever the concurrency: each group's in its own order, the
groups in plan order. I/O concurrency is bounded by the one pool of `workers` threads that every group
submits to (bounded_map), so running groups ahead adds no requests in flight beyond it.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, TypeVar

from .core.chain import ChainFindings, end_of, link_group
from .core.encryption import EncryptionPolicy, digest_encryption, log_encryption, unreadable_is_foreign
from .core.explain import MAX_LOG_JSON, START_EVENTS, STOP_EVENTS, TrailEvent, explanation, trail_events
from .core.hashing import GunzipSha256
from .core.keys import KeyRing
from .core.verify import MAX_DIGEST_UNCOMPRESSED, CheckedDigest, check_digest
from .errors import (ConfigError, EvidenceModifiedError, IntegrityError, KmsAccessDeniedError, NotFoundError,
                     SourceError)
from .incremental import Incremental
from .model import ACCOUNT, REGION, KeyName, LogFileRef, ObjectMeta, ObjectRef, format_time, normalize_prefix, parse_key
from .policy import IdentityMap, LocationMap, RunConfig
from .results import (INVALID, MISSING, PENDING, UNVERIFIABLE, VALID, WARNING, DigestRecord, GapRecord, LogRecord,
                      ObjectRecord, Record, Summary, Verdict)
from .engines.local import Engine, LocalEngine
from .history import History
from .listed import ListedLogs
from .sources.base import ListedObject, ObjectStream, Source, TrailInfo
from .state import StateStore

UTC = timezone.utc
LIST_MARGIN = timedelta(hours=2)
PENDING_WINDOW = timedelta(hours=2)
MAX_DIGEST_BYTES = 64 << 20
MAX_POINTER_ROUNDS = 10_000
READ_ATTEMPTS = 4  # whole-object reads, on top of botocore's own request retries
RETRY_BACKOFF = 0.25
PLAN_LISTINGS = 16  # folder listings of the plan in flight at once
GROUP_LOOKAHEAD = 2  # groups whose digests are listed and fetched ahead of the one whose records are being written
DIGESTS_PER_DAY = 24  # a digest folder's day: what its listing's first page asks for (and a margin)
PART_DAYS = 14  # a longer window is checked in parts of this many days (memory: one part's digests; each
# part fetches the digests of its two margins again: 2 x PART_MARGIN more digest GETs every PART_DAYS)
PART_MARGIN = LIST_MARGIN + timedelta(hours=24)  # a part's neighbours: links, and backfill digests' log files
TAIL = timedelta(minutes=90)  # a part's last verified log files kept for a gap the next part finds
DAYS_AHEAD = 4  # days of a log folder listed ahead of the one being classified (each held until its turn)

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], window: int) -> Iterator[R]:
    """Like pool.map, in order, but with at most `window` tasks in flight (back-pressure, flat memory)."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@dataclass(frozen=True, order=True)
class Group:
    account_id: str
    region: str
    org_id: str | None = None

    def root(self, prefix: str) -> str:
        org = f"{self.org_id}/" if self.org_id else ""
        return f"{prefix}AWSLogs/{org}{self.account_id}/"


@dataclass
class Plan:
    """What the run walks: the resolved bucket, prefix, groups, and the trail's status."""

    bucket: str
    prefix: str
    groups: list[Group]
    trail: TrailInfo | None
    missing_accounts: list[str] = field(default_factory=list)
    missing_regions: list[tuple[str, str]] = field(default_factory=list)


def plan_locations(source: Source, cfg: RunConfig, info: TrailInfo | None) -> Plan:
    """Where a run looks: the bucket and prefix (flags over DescribeTrails), and every (account, region)
    folder found below them, organization layout included. `inspect` shows the same plan."""
    bucket = cfg.bucket or (info.bucket if info else None)
    if not bucket:
        why = list(getattr(source, "problems", None) or [])  # e.g. DescribeTrails failed, and how
        raise ConfigError("no S3 bucket: give --s3-bucket, or allow DescribeTrails for the trail"
                          + (f" ({why[-1]})" if why else ""))
    prefix = normalize_prefix(cfg.prefix if cfg.prefix is not None else (info.prefix if info else ""))
    base = f"{prefix}AWSLogs/"
    top = source.list_folders(bucket, base)
    org_ids = sorted(f for f in top if re.fullmatch(r"o-[a-z0-9]{10,32}", f))
    is_org = info.is_organization_trail if info is not None else bool(org_ids)
    roots: list[tuple[str | None, str]] = []
    if is_org:
        wanted_orgs = [info.organization_id] if info and info.organization_id else org_ids
        for org in wanted_orgs:
            for acct in source.list_folders(bucket, f"{base}{org}/"):
                if re.fullmatch(ACCOUNT, acct) and (cfg.account_id in (None, acct)):
                    roots.append((org, acct))
    else:
        acct = cfg.account_id or cfg.trail.account_id
        if acct in top:
            roots.append((None, acct))
    groups: list[Group] = []

    def folders(job: tuple[str, str]) -> list[str]:
        return source.list_folders(bucket, job[0] + job[1])

    # two listings per account, concurrently (an organization bucket has hundreds of accounts), in order
    jobs = [(Group(acct, "", org).root(prefix), sub) for org, acct in roots
            for sub in ("CloudTrail-Digest/", "CloudTrail/")]
    with ThreadPoolExecutor(max_workers=max(1, min(cfg.workers, PLAN_LISTINGS))) as pool:
        listed = list(pool.map(folders, jobs))
    for i, (org, acct) in enumerate(roots):
        regions = set(listed[2 * i]) | set(listed[2 * i + 1])
        for region in sorted(r for r in regions if re.fullmatch(REGION, r)):
            if cfg.regions is None or region in cfg.regions:
                groups.append(Group(acct, region, org))
    found_accounts = {g.account_id for g in groups}
    plan = Plan(bucket=bucket, prefix=prefix, groups=sorted(groups), trail=info)
    plan.missing_accounts = sorted(a for a in cfg.expect_accounts if a not in found_accounts)
    return plan


class Validation:
    """One validation run over a source. Iterate `records()`; `summary` is complete afterwards."""

    def __init__(self, source: Source, config: RunConfig, keys: KeyRing | None, key_origin: str | None,
                 encryption: EncryptionPolicy | None = None, now: datetime | None = None,
                 state: "StateStore | None" = None, recheck: bool = False, engine: "Engine | None" = None):
        self.incremental = Incremental(self, state, recheck) if state is not None else None
        self.source = self.incremental.observe(source) if self.incremental else source
        self.config = config
        self.keys = keys
        self.now = now or datetime.now(UTC)
        self.reference_time = source.reference_time()
        self.window_end = config.end or self.now
        self.summary = Summary(requested_start=config.start, requested_end=self.window_end,
                               unexplained_gaps_fail=config.require_explained_gaps, public_keys=key_origin,
                               manifest_sha256=source.manifest_sha256)
        self.trail_info = source.trail_info(config.trail)
        self.encryption = encryption or _encryption_from(self.trail_info, config)
        self.plan = self._plan()
        if self.incremental:
            self.incremental.bind()
            self.summary.state_used = True
        if keys is None:
            keys, key_origin = self._source_keys(), source.key_origin
            self.summary.public_keys = key_origin
        self.keys = keys
        self.locations: LocationMap = (LocationMap.parse(config.copy_of, self.plan.bucket, self.plan.prefix)
                                       if config.copy_of else IdentityMap())
        self._pool = ThreadPoolExecutor(max_workers=max(1, config.workers), thread_name_prefix="ctv")
        self._window = max(2, config.workers * 4)
        self.engine: Engine = engine or LocalEngine()
        self.oldest_found: datetime | None = None
        self.progress: Callable[[Record], None] | None = None
        self._stop = threading.Event()
        self._chains_seen: set[tuple[str, str]] = set()
        self._gaps: list[GapRecord] = []
        self._strays: dict[ObjectRef, ObjectRecord] = {}
        self._lock = threading.Lock()  # for what group threads share: strays, oldest_found
        self._helpers: ThreadPoolExecutor | None = None  # group lookahead and listing ahead (workers > 1)
        self.history = self._history()

    def _history(self) -> History:
        """Versions and Object Lock of the bucket (asked once; nothing when the source keeps no versions)."""
        protection = self.source.bucket_protection(self.plan.bucket) if self.plan.groups else None
        self.summary.protection = protection.to_json() if protection else None
        return History(self, protection)

    @classmethod
    def object_checker(cls, source: Source, config: RunConfig, keys: KeyRing, encryption: EncryptionPolicy,
                       locations: LocationMap) -> "Validation":
        """An instance for the per-object checks only (`_fetch_digest`, `_check_listed_log`): what an
        engine's worker runs, without discovery, key listing or the trail's configuration (the driver's)."""
        self = cls.__new__(cls)
        self.source, self.config, self.keys, self.encryption, self.locations = (
            source, config, keys, encryption, locations)
        self._pool = ThreadPoolExecutor(max_workers=max(1, config.workers), thread_name_prefix="ctv-worker")
        self._window = max(2, config.workers * 4)
        self.history = History(self, None)  # an engine gives each task the driver's history of its objects
        return self

    def _source_keys(self) -> KeyRing:
        """Keys from the source (ListPublicKeys per region, or the evidence's), with the AWS CLI's margins."""
        regions = sorted({g.region for g in self.plan.groups})
        start = self.config.start - LIST_MARGIN if self.config.start else None
        ring = self.source.public_keys(regions, start, self.window_end + LIST_MARGIN)
        if len(ring) == 0 and not ring.rejected and self.plan.groups:
            raise ConfigError("no public keys: give --public-keys, or allow cloudtrail:ListPublicKeys")
        return ring

    # --- discovery ---------------------------------------------------------------

    def _plan(self) -> Plan:
        return plan_locations(self.source, self.config, self.trail_info)

    # --- the run -------------------------------------------------------------------

    def records(self) -> Iterator[Record]:
        try:
            for group, records in self._groups_in_order():
                if self._stop.is_set():
                    return
                for rec in records:
                    if self._stop.is_set():
                        return
                    self.summary.add(rec)
                    yield rec
                for stray in self._take_strays(group):
                    self.summary.add(stray)
                    yield stray
            for rec in self._gap_records():
                self.summary.add(rec)
                yield rec
            for rec in self._expectation_records():
                self.summary.add(rec)
                yield rec
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            if self._helpers is not None:
                self._helpers.shutdown(wait=False, cancel_futures=True)
        if self.config.start is None:
            self.summary.requested_start = self.oldest_found

    def _groups_in_order(self) -> Iterator[tuple[Group, Iterator[Record]]]:
        """Each group with its records (streamed), in plan order. With more than one worker, the digests of
        up to GROUP_LOOKAHEAD further groups are listed, fetched and linked meanwhile in helper threads
        (their reads go through the same bounded pool); a group's log files are hashed as its records go out."""
        if (self.config.workers <= 1 or len(self.plan.groups) <= 1 or self.history.enabled or self.incremental
                or not isinstance(self.engine, LocalEngine)):
            # History (versions) and the state (--state: its observed listings, its SQLite connection) keep
            # one group at a time, and a cluster engine has its own parallelism: with any of them, groups
            # run in turn
            for group in self.plan.groups:
                if self._stop.is_set():
                    return
                yield group, self._group_records(self._group_digests(group))
            return
        helpers = self._helper_pool()
        running: deque[tuple[Group, Future[GroupDigests]]] = deque()
        todo = iter(self.plan.groups)
        for group in todo:
            running.append((group, helpers.submit(self._group_digests, group)))
            if len(running) > GROUP_LOOKAHEAD:
                break
        while running:
            group, future = running.popleft()
            digests = future.result()
            if not self._stop.is_set():
                nxt = next(todo, None)
                if nxt is not None:
                    running.append((nxt, helpers.submit(self._group_digests, nxt)))
            yield group, self._group_records(digests)

    def _helper_pool(self) -> ThreadPoolExecutor:
        """Threads for whole groups and listings; never the read pool, so that waiting on reads cannot deadlock."""
        if self._helpers is None:
            self._helpers = ThreadPoolExecutor(max_workers=2 * (GROUP_LOOKAHEAD + 1), thread_name_prefix="ctv-ahead")
        return self._helpers

    def _take_strays(self, group: Group) -> list[ObjectRecord]:
        """The stray objects found in this group's two folders, in key order (groups' folders never overlap)."""
        root = group.root(self.plan.prefix)
        folders = (f"{root}CloudTrail-Digest/{group.region}/", f"{root}CloudTrail/{group.region}/")
        with self._lock:
            mine = sorted(ref for ref in self._strays
                          if ref.bucket == self.plan.bucket and ref.key.startswith(folders))
            return [self._strays.pop(ref) for ref in mine]

    def interrupt(self) -> None:
        self._stop.set()
        self.summary.interrupted = True

    def _stray(self, ref: ObjectRef, where: str) -> None:
        with self._lock:
            if ref not in self._strays:
                self._strays[ref] = ObjectRecord(ref.bucket, ref.key, Verdict(
                    WARNING, "stray", f"{where}, but no CloudTrail name (or its date folder contradicts its name)"))

    # --- gaps -----------------------------------------------------------------------------

    def _explain_gaps(self, gaps: list[GapRecord], logs: list[LogRecord]) -> None:
        """Look for StopLogging/DeleteTrail/UpdateTrail before each gap, and the restart after it,
        in this region's verified log files near the gap's edges."""
        if not gaps:
            return
        trail = self.config.trail
        verified = [r for r in logs if r.verdict.status in (VALID, WARNING)]
        for gap in gaps:
            near = [r for r in verified if self._near_a_gap(r, [gap])]
            stops: list[TrailEvent] = []
            starts: list[TrailEvent] = []
            for r in near:
                raw = self._read_log_json(ObjectRef(r.bucket, r.key))
                if raw is None:
                    continue
                stops += trail_events(raw, r.key, trail.name, str(trail), STOP_EVENTS)
                starts += trail_events(raw, r.key, trail.name, str(trail), START_EVENTS)
            gap.explained_by = explanation(stops, starts, gap.start_time, gap.end_time)

    def _near_a_gap(self, rec: LogRecord, gaps: list[GapRecord]) -> bool:
        """A log file whose time is near a gap's edges: where the event that explains it would be."""
        name = parse_key(self.locations.to_original(ObjectRef(rec.bucket, rec.key)).key)
        if name is None:
            return False
        return any(gap.start_time - timedelta(minutes=90) <= name.time <= gap.start_time + timedelta(minutes=30)
                   or gap.end_time - timedelta(minutes=60) <= name.time <= gap.end_time + timedelta(minutes=60)
                   for gap in gaps)

    def _read_log_json(self, lies_at: ObjectRef) -> bytes | None:
        kept = self.incremental.log_json(lies_at) if self.incremental else None
        if kept is not None:  # --state: the control events of a log file unchanged since it was verified
            return kept
        try:
            with self.source.open(lies_at) as stream:
                hasher = GunzipSha256(max_output=MAX_LOG_JSON, keep_output=True)
                for chunk in stream.chunks():
                    hasher.update(chunk)
                hasher.finish()
                raw = hasher.output()
        except (SourceError, IntegrityError):
            return None
        if self.incremental:
            self.incremental.keep_log_json(lies_at, raw)
        return raw

    def _gap_records(self) -> Iterator[GapRecord]:
        """Gaps, with an explanation found in another region of the account shared where the spans meet."""
        # in plan order (groups may finish in any order; a stable sort restores the order of a sequential run)
        explained = [g for g in sorted(self._gaps, key=lambda g: (g.account_id, g.region))
                     if g.explained_by is not None]
        for gap in sorted(self._gaps, key=lambda g: (g.account_id, g.region, g.start_time)):
            if gap.explained_by is None:
                for other in explained:
                    if (other.account_id == gap.account_id
                            and abs(other.start_time - gap.start_time) <= timedelta(minutes=90)):
                        gap.explained_by = other.explained_by
                        break
            e = gap.explained_by
            gap.message = (f"No log files were delivered by CloudTrail between {format_time(gap.start_time)} and "
                           f"{format_time(gap.end_time)}; " + (
                               f"explained by {e['event_name']} at {e['event_time']} by {e['principal_arn']} from "
                               f"{e['source_ip']}" if e else "no StopLogging, DeleteTrail or UpdateTrail event "
                               "in the trail's verified logs explains it"))
            yield gap

    def _expectation_records(self) -> Iterator[Record]:
        for acct in self.plan.missing_accounts:
            yield DigestRecord(bucket=None, key=None, region="", account_id=acct,
                               verdict=Verdict(MISSING, "account_missing",
                                               f"expected account {acct} has no digests for this trail"),
                               start_time=self.config.start, end_time=self.window_end)
        accounts = set(g.account_id for g in self.plan.groups) | set(self.config.expect_accounts)
        expected = {(a, r): f"expected region {r} has no digest chain in the window"
                    for a in accounts - set(self.plan.missing_accounts) for r in self.config.expect_regions}
        implied = self._implied_home_chain()
        if implied is not None:
            expected.setdefault(implied, (
                f"the trail's status names a digest delivered at {format_time(self.trail_info.latest_digest_delivery)}"
                f", but its home region {implied[1]} has no digest chain in the window under "
                f"s3://{self.plan.bucket}/{self.plan.prefix}AWSLogs/"))
        for (acct, region), message in sorted(expected.items()):
            if (acct, region) not in self._chains_seen:
                yield DigestRecord(bucket=None, key=None, region=region, account_id=acct,
                                   verdict=Verdict(MISSING, "region_missing", message),
                                   start_time=self.config.start, end_time=self.window_end)
        if self.incremental:  # --state: chains the state vouched for, whose folders are gone
            yield from self.incremental.vanished_chains(already=set(expected))

    def _implied_home_chain(self) -> tuple[str, str] | None:
        """The (account, home region) chain the trail's own status implies: it delivered a digest inside the
        window, so a run that finds no chain there was pointed at the wrong place or the folder was deleted."""
        info, cfg = self.trail_info, self.config
        if info is None or info.latest_digest_delivery is None or info.log_file_validation is False:
            return None
        if info.is_organization_trail and cfg.account_id is None:
            return None
        if cfg.regions is not None and cfg.trail.home_region not in cfg.regions:
            return None
        latest = info.latest_digest_delivery
        if (cfg.start is not None and latest < cfg.start) or latest > self.window_end + LIST_MARGIN:
            return None
        return (cfg.account_id or cfg.trail.account_id, cfg.trail.home_region)

    # --- one group ---------------------------------------------------------------------

    def _group_digests(self, group: Group, part: "Part | None" = None,
                       carry: "Carry | None" = None) -> "GroupDigests":
        """A group's digests (of one part of its window, see Part): listed, fetched, checked, their pointers
        followed and their chains linked. Their log lists go to disk as they arrive (ListedLogs)."""
        root = group.root(self.plan.prefix)
        if part is None:  # the group's first part
            self.history.load(group, root)
            part, carry = self._first_part(group, root), Carry()
        assert carry is not None
        own, foreign = self._list_digests(group, root, part)
        own += self.history.deleted_digests(group, own)
        listed = ListedLogs()
        known = self.incremental.digests(own) if self.incremental else None  # --state: unchanged ones, no GET
        fetched = self.engine.map_digests(self, known.fetch if known else own)
        if known:  # the state keeps what was fetched (signatures whole) before it is compacted
            checked = [listed.shelve(d) for d in known.merge(list(fetched))]
        else:
            checked = [listed.shelve(d) for d in fetched]
        seen = {d.original for d in checked}
        checked += [d for d in carry.newest.values() if d.original not in seen]  # the parts before: neighbours
        window_start = self._group_window_start(checked) if part.first else carry.window_start
        assert window_start is not None
        for d in checked:
            d.in_range = self._in_range(d, window_start) and part.owns(d)
        checked = self._follow_pointers(checked, window_start, listed.shelve, part, root)
        if self.config.start is None and part.first:  # the default window reaches back to the oldest digest
            window_start = self._group_window_start(checked)
        info = self.trail_info
        chain_end_ref = info.latest_digest_delivery if info and part.last else None
        regular = [d for d in checked if not d.backfill]
        backfill = [d for d in checked if d.backfill]
        kw = dict(account_id=group.account_id, region=group.region, window_start=window_start,
                  window_end=self.window_end, chain_end_ref=chain_end_ref, owns=None if part.whole else part.owns)
        reg_found = link_group(regular, backfill=False, **kw)
        bf_found = link_group(backfill, backfill=True, **kw)

        if self.config.start is None and part.first:  # digests known only by a pointer belong to the window too
            missing_starts = [m.start_time for m in reg_found.missing + bf_found.missing if m.start_time is not None]
            window_start = min([window_start, *missing_starts])
            if not self._history_starts_with_a_chain_start(regular):
                window_start = self._reach_back_to_oldest_log(group, root, window_start, reg_found.missing,
                                                              hole=bool(regular))
        digest_records: list[DigestRecord] = [self._digest_record(d, group) for d in checked if d.in_range]
        digest_records += [m for m in reg_found.missing + bf_found.missing
                           if m.end_time is None or m.end_time >= window_start]
        digest_records.sort(key=lambda r: (r.backfill, r.end_time or self.window_end, r.key or ""))
        if any(r.key is not None for r in digest_records):
            self._chains_seen.add((group.account_id, group.region))
        # the first trusted digest in this order that lists a log file is the one it is checked against (the
        # window's digests first: in a part, those of the window whichever part owns them; a log file is hashed
        # by the part that owns the digest chosen)
        in_window = {id(d): d.in_range or (self._in_range(d, window_start) and not part.owns(d)) for d in checked}
        listed.rank(sorted(checked, key=lambda d: (not in_window[id(d)], end_of(d) or self.window_end)))
        lost = self._lost_digests(checked, reg_found.missing + bf_found.missing)
        carry.window_start = window_start
        for d in checked:  # the newest of each chain, for the parts after
            end = end_of(d)
            if end is not None and part.owns(d):
                old = carry.newest.get(d.backfill)
                if old is None or (end, d.original.key) > (end_of(old) or end, old.original.key):
                    carry.newest[d.backfill] = _neighbour(d)
        carry.gaps += reg_found.gaps
        return GroupDigests(group, root, window_start, digest_records, reg_found, bf_found, lost, foreign, listed,
                            part, carry)

    def _first_part(self, group: Group, root: str) -> "Part":
        """The group's window in parts of PART_DAYS days (by digest end and log file time), when it is longer;
        the whole window in one part where the history or the state needs the group's records together."""
        whole = Part(None, None)
        if self.history.enabled or self.incremental:
            return whole
        start = self.config.start
        if start is None:  # the default window: from the first day of the digest folder
            folder = f"{root}CloudTrail-Digest/{group.region}/"
            # one key is enough: S3 is asked for a small first page, not 1,000 keys
            first = next(iter(self.source.list_range(self.plan.bucket, folder, folder, folder + "\U0010ffff", 1)), None)
            if first is None:
                return whole
            try:
                start = datetime.strptime(first.ref.key[len(folder):len(folder) + 10], "%Y/%m/%d").replace(tzinfo=UTC)
            except ValueError:
                return whole
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        hi = day + timedelta(days=PART_DAYS)
        return Part(None, hi) if hi < self.window_end else whole

    def _group_records(self, g: "GroupDigests") -> Iterator[Record]:
        """A group's records as they are made, part after part: its digests', then its log files' (hashed now),
        then those of the log files no digest lists; the history's annotations on each (and its deleted log
        files). The group's gaps are explained at its end, from the verified log files near them."""
        while True:
            yield from self._part_records(g)
            if g.part.last or self._stop.is_set():
                break
            g = self._group_digests(g.group, g.part.next(self.window_end), g.carry)
        carry = g.carry
        self._explain_gaps(carry.gaps, list(carry.near_gaps.values()))
        self._gaps += carry.gaps

    def _part_records(self, g: "GroupDigests") -> Iterator[Record]:
        try:
            records = self._group_stream(g)
            if self.incremental:  # --state amends the group's records at its end: they are kept until then
                out = list(records)
                out += self.history.annotate(out, g.window_start)
                out += self.incremental.after_group(self._log_listing(g.group, g.root, g.window_start)[0],
                                                    g.window_start, out)
                yield from out
                return
            named: set[ObjectRef] = set()
            for rec in records:
                self.history.annotate_one(rec, named)
                yield rec
            yield from self.history.unnamed_deleted(named, g.window_start)
        finally:
            g.listed.close()

    def _group_stream(self, g: "GroupDigests") -> Iterator[Record]:
        group, root, window_start = g.group, g.root, g.window_start
        digest_records, g.digest_records = g.digest_records, []
        yield from digest_records
        del digest_records  # a long history's digest records need not stay while its log files are checked
        to_hash: Iterable[tuple[LogFileRef, CheckedDigest]] = g.listed.to_hash()
        known_logs = None
        if self.incremental:
            to_hash = list(to_hash)
            known_logs = self.incremental.logs(to_hash, self._log_listing(group, root, window_start))
        log_records: Iterable[LogRecord] = self.engine.map_logs(self, known_logs.fetch if known_logs else to_hash)
        if known_logs:
            log_records = known_logs.merge(list(log_records))
        carry = g.carry
        newest = carry.newest.get(False)
        tail_from = (end_of(newest) - TAIL if newest is not None and end_of(newest) is not None
                     and not g.part.last else None)  # the last part keeps no tail: no part comes after it
        carry.keep_near_gaps(self, tail_from)  # the last part's tail, near a gap found in this one
        for rec in log_records:
            if rec.verdict.status in (VALID, WARNING):
                carry.take(self, rec, tail_from)
            yield rec
        in_folder = self._log_folder(group, root, window_start,  # --state: one listing, which it replays
                                     None if self.incremental else g.listed, g.part)
        yield from self._unlisted_logs(g, g.regular.coverage, g.regular.newest_end, in_folder, g.lost)

    def _list_ahead(self, fn: Callable[..., T], *args: object) -> "Future[T]":
        """Run a listing in a helper thread (inline with one worker), so it overlaps the reads that follow."""
        if self.config.workers <= 1:
            done: Future[T] = Future()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # handed over to .result(), as from a thread
                done.set_exception(exc)
            return done
        return self._helper_pool().submit(fn, *args)

    @staticmethod
    def _history_starts_with_a_chain_start(regular: list[CheckedDigest]) -> bool:
        """With the default start, logs before the oldest digest are out of range only when that digest is a
        verified chain start (validation began there); otherwise the history reaches further back."""
        spanned = [d for d in regular if _span(d) is not None]
        if not spanned:
            return False
        oldest = min(spanned, key=lambda d: _span(d)[0])
        return oldest.trusted and oldest.digest is not None and oldest.digest.previous is None

    def _reach_back_to_oldest_log(self, group: Group, root: str, start: datetime,
                                  missing: list[DigestRecord], hole: bool = True) -> datetime:
        """The oldest chain begins with a deleted digest: the history reaches back at least to the oldest
        log file of the region, and the span before the deleted digest is a hole of unknowable keys."""
        oldest = None
        for obj in self.source.list(self.plan.bucket, f"{root}CloudTrail/{group.region}/"):
            name = parse_key(self.locations.to_original(obj.ref).key)
            if name is not None and not name.is_digest:
                oldest = name.time
                break
        if oldest is None or oldest >= start - timedelta(minutes=1):
            return start
        if not hole:
            return oldest
        missing.append(DigestRecord(
            bucket=None, key=None, region=group.region, account_id=group.account_id,
            verdict=Verdict(MISSING, "not_found",
                            f"log files from {format_time(oldest)} on, but the oldest digest found is no verified "
                            f"chain start: digests deleted between {format_time(oldest)} and {format_time(start)}"),
            start_time=oldest, end_time=start))
        return oldest

    def _group_window_start(self, checked: list[CheckedDigest]) -> datetime:
        if self.config.start is not None:
            return self.config.start
        starts = [_span(d)[0] for d in checked if _span(d) is not None]
        start = min(starts) if starts else self.window_end
        with self._lock:
            self.oldest_found = start if self.oldest_found is None else min(self.oldest_found, start)
        return start

    def _in_range(self, d: CheckedDigest, window_start: datetime) -> bool:
        span = _span(d)
        return span is not None and span[0] <= self.window_end and span[1] >= window_start

    def _list_digests(self, group: Group, root: str, part: "Part") -> tuple[list[ObjectRef], list[ObjectRef]]:
        """This trail's digest keys in the window or part (with margins), and other trails' in the same folder."""
        folder = f"{root}CloudTrail-Digest/{group.region}/"
        lo = self.config.start - LIST_MARGIN if self.config.start else None  # the window's, and a part's
        hi = self.window_end + LIST_MARGIN  # margins within them: a part sees only what the whole window sees
        if part.lo is not None:
            lo = max(lo, part.lo - PART_MARGIN) if lo is not None else part.lo - PART_MARGIN
        if part.hi is not None:
            hi = min(hi, part.hi + PART_MARGIN)
        start_after = (folder + lo.strftime("%Y/%m/%d")) if lo else None
        last_day = hi.strftime("%Y/%m/%d")
        own: list[ObjectRef] = []
        foreign: list[ObjectRef] = []
        trail = self.config.trail
        objects = (self._listing_by_day(folder, start_after, last_day, lambda lo, hi: DIGESTS_PER_DAY)
                   if start_after and not self.incremental  # --state replays no digest listing, but keeps one
                   else self._listing(folder, start_after, None, last_day))
        for obj in objects:
            name = parse_key(self.locations.to_original(obj.ref).key)
            if name is None or not name.is_digest:
                self._stray(obj.ref, "in the digest folder")
                continue
            if lo is not None and name.time < lo or name.time > hi:
                continue
            if name.trail_name == trail.name and name.home_region == trail.home_region:
                own.append(obj.ref)
            else:
                foreign.append(obj.ref)
        return own, foreign

    # --- digests -----------------------------------------------------------------------------

    def _fetch_digest(self, lies_at: ObjectRef, opener: Callable[[], ObjectStream] | None = None) -> CheckedDigest:
        """Fetch and check a digest (`opener`: one version of it); a transport failure is retried within bounds,
        then unverifiable."""
        for attempt in range(READ_ATTEMPTS):
            result = self._fetch_digest_once(lies_at, opener)
            if result.verdict.reason != "transport_error" or attempt == READ_ATTEMPTS - 1:
                return result
            time.sleep(RETRY_BACKOFF * (2 ** attempt))
        return result

    def _fetch_digest_once(self, lies_at: ObjectRef, opener: Callable[[], ObjectStream] | None = None) -> CheckedDigest:
        original = self.locations.to_original(lies_at)
        name = parse_key(original.key)
        backfill = bool(name and name.backfill)
        try:
            with (opener() if opener else self.source.open(lies_at)) as stream:
                data = _read_capped(stream.chunks(), MAX_DIGEST_BYTES)
                meta = stream.meta
        except (SourceError, IntegrityError) as exc:
            if opener is None and isinstance(exc, NotFoundError):
                recovered = self.history.recover_digest(lies_at)  # deleted: its surviving version, if any
                if recovered is not None:
                    return recovered
            verdict = self._read_failure(lies_at, exc, is_digest=True)
            return CheckedDigest(lies_at=lies_at, original=original, verdict=verdict, backfill=backfill)
        if opener is None:
            self.history.note_meta(meta)
        return self._judge_digest(data, meta, lies_at, original, backfill)

    def _judge_digest(self, data: bytes, meta: ObjectMeta, lies_at: ObjectRef, original: ObjectRef,
                      backfill: bool) -> CheckedDigest:
        """A digest's verdict from its bytes and metadata (fetched now, or kept by the state)."""
        result = check_digest(data, meta.metadata, lies_at, original, self.keys, backfill=backfill)
        if result.trusted:
            enc = digest_encryption(meta)
            if enc is not None:
                result.verdict = result.verdict.worse(enc)
            late = self._late_write(meta, end_of(result))
            if late is not None:
                result.verdict = result.verdict.worse(late)
        return result

    def _follow_pointers(self, checked: list[CheckedDigest], window_start: datetime,
                         shelve: Callable[[CheckedDigest], CheckedDigest], part: "Part | None" = None,
                         root: str = "") -> list[CheckedDigest]:
        """Fetch predecessors that trusted in-range digests name but the listing did not hold."""
        by_loc = {d.original: d for d in checked}
        absent: set[ObjectRef] = set()
        for _ in range(MAX_POINTER_ROUNDS):
            wanted = sorted({d.digest.previous for d in by_loc.values()
                             if d.trusted and d.in_range and d.digest is not None and d.digest.previous is not None
                             and d.digest.previous not in by_loc and d.digest.previous not in absent})
            if not wanted:
                break
            for ref in wanted:
                d = shelve(self._fetch_digest(self.locations.to_copy(ref)))
                if d.verdict.reason == "not_found":
                    absent.add(ref)
                    continue
                d.original = ref
                d.in_range = self.config.start is None or self._in_range(d, window_start)
                if part is not None and not part.whole and ref.key.startswith(f"{root}CloudTrail-Digest/"):
                    d.in_range = d.in_range and part.owns(d)  # in the group's folder: the part of its time's
                by_loc[ref] = d
        return list(by_loc.values())

    def _digest_record(self, d: CheckedDigest, group: Group) -> DigestRecord:
        name = parse_key(d.original.key)
        if d.digest is not None:
            start, end = d.digest.start_time, d.digest.end_time
        else:
            end = name.time if name else None
            start = None
        record = DigestRecord(
            bucket=d.lies_at.bucket, key=d.lies_at.key, region=name.region if name else group.region,
            account_id=name.account_id if name else group.account_id, verdict=d.verdict,
            start_time=start, end_time=end, fingerprint=d.digest.fingerprint if d.digest else None,
            backfill=d.backfill, log_count=d.count_logs(), from_state=d.from_state)
        self.history.on_digest_record(record, d)
        return record

    # --- failures to read --------------------------------------------------------------------

    def _read_failure(self, ref: ObjectRef, exc: Exception, is_digest: bool) -> Verdict:
        if isinstance(exc, EvidenceModifiedError):
            return Verdict(INVALID, "evidence_modified", f"evidence modified after acquisition: {exc}")
        if isinstance(exc, IntegrityError):
            return Verdict(INVALID, exc.reason, f"invalid format: {exc}")
        if isinstance(exc, NotFoundError):
            return Verdict(MISSING, "not_found", "not found")
        assert isinstance(exc, SourceError)
        if exc.reason in ("access_denied", "kms_access_denied"):
            try:
                meta = self.source.head(ref)
            except SourceError:
                meta = None
            if meta is not None:
                foreign = unreadable_is_foreign(meta, self.encryption, is_digest)
                if foreign is not None:
                    return foreign
        if isinstance(exc, KmsAccessDeniedError):
            key = exc.key_arn or "the object's KMS key"
            return Verdict(UNVERIFIABLE, "kms_access_denied",
                           f"S3 could not decrypt it for the caller: kms:Decrypt on {key} is needed ({exc})")
        return Verdict(UNVERIFIABLE, exc.reason, str(exc)[:300] or exc.reason)

    def _late_write(self, meta: ObjectMeta, written_by: datetime | None) -> Verdict | None:
        cfg = self.config
        if not cfg.check_write_times or written_by is None or meta.last_modified is None:
            return None
        if not self.source.original_write_times or cfg.copy_of:
            return None
        late = meta.last_modified - written_by
        if late > cfg.write_time_tolerance:
            return Verdict(WARNING, "late_write",
                           f"last modified {format_time(meta.last_modified)}, {late} after CloudTrail wrote it")
        return None

    # --- log files ---------------------------------------------------------------------------

    def _check_listed_log(self, item: tuple[LogFileRef, CheckedDigest]) -> LogRecord:
        lf, d = item
        lies_at = self.locations.to_copy(lf.ref)
        name = parse_key(lf.ref.key)
        verdict = self._hash_log(lies_at, lf, name)
        record = LogRecord(bucket=lies_at.bucket, key=lies_at.key, verdict=verdict, digest_key=d.lies_at.key,
                           region=name.region if name else None, account_id=name.account_id if name else None)
        self.history.on_listed_log(record, lf, lies_at)
        return record

    def _hash_log(self, lies_at: ObjectRef, lf: LogFileRef, name: KeyName | None,
                  opener: Callable[[], ObjectStream] | None = None) -> Verdict:
        """Hash a log (`opener`: one version of it); a transport failure mid-stream restarts the read and the
        hash, within bounds."""
        for attempt in range(READ_ATTEMPTS):
            verdict = self._hash_log_once(lies_at, lf, name, opener)
            if verdict.reason != "transport_error" or attempt == READ_ATTEMPTS - 1:
                return verdict
            time.sleep(RETRY_BACKOFF * (2 ** attempt))
        return verdict

    def _hash_log_once(self, lies_at: ObjectRef, lf: LogFileRef, name: KeyName | None,
                       opener: Callable[[], ObjectStream] | None = None) -> Verdict:
        try:
            stream = opener() if opener else self.source.open(lies_at)
        except (SourceError, IntegrityError) as exc:
            return self._read_failure(lies_at, exc, is_digest=False)
        with stream:
            hasher = GunzipSha256()
            try:
                for chunk in stream.chunks():
                    hasher.update(chunk)
                actual = hasher.finish()
            except IntegrityError as exc:
                try:
                    stream.verify_rest()
                except EvidenceModifiedError as modified:
                    return self._read_failure(lies_at, modified, is_digest=False)
                except SourceError as damaged:  # the body was not the stored object: a transport fault, retried
                    return self._read_failure(lies_at, damaged, is_digest=False)
                except IntegrityError:
                    pass
                if hasher.too_large:
                    return Verdict(INVALID, "hash_mismatch", f"hash value doesn't match: {exc}")
                return self._read_failure(lies_at, exc, is_digest=False)
            except SourceError as exc:
                return self._read_failure(lies_at, exc, is_digest=False)
            meta = stream.meta
        if opener is None:
            self.history.note_meta(meta)
        if lf.hash_algorithm not in ("SHA-256", "SHA256"):
            return Verdict(INVALID, "hash_mismatch", f"unsupported hash algorithm {lf.hash_algorithm!r:.40}")
        if actual != lf.hash_value:
            return Verdict(INVALID, "hash_mismatch", "hash value doesn't match")
        return self._judge_log_meta(meta, name)

    def _judge_log_meta(self, meta: ObjectMeta, name: KeyName | None) -> Verdict:
        """A log whose hash matched: the encryption and write-time rules on its metadata."""
        verdict = Verdict.valid()
        enc = log_encryption(meta, self.encryption)
        if enc is not None:
            verdict = verdict.worse(enc)
        late = self._late_write(meta, name.time + timedelta(minutes=1) if name else None)
        if late is not None:
            verdict = verdict.worse(late)
        return verdict

    def _unlisted_logs(self, g: "GroupDigests", coverage: list[tuple[datetime, datetime]],
                       newest_end: datetime | None, in_folder: Iterable[tuple[ObjectRef, KeyName]],
                       lost: "LostDigests | None" = None) -> Iterator[LogRecord]:
        """The log files of the folder's listing that no trusted digest of the group lists, classified."""
        latest = (self.trail_info.latest_digest_delivery if self.trail_info and self.trail_info.latest_digest_delivery
                  else self.reference_time)
        others_known = not g.foreign
        for ref, name in in_folder:
            if g.listed.lists(ref):
                continue
            if not others_known:  # other trails' digests in the folder: fetched once a log file needs them
                g.listed.add_others(lf.ref for d in self.engine.map_digests(self, g.foreign)
                                    if d.trusted and d.digest is not None for lf in d.digest.log_files)
                others_known = True
            if g.foreign and g.listed.others_list(ref):
                continue
            verdict = self._classify_unlisted(name.time, coverage, newest_end, latest, lost)
            lies_at = self.locations.to_copy(ref)
            yield LogRecord(bucket=lies_at.bucket, key=lies_at.key, verdict=verdict, digest_key=None,
                            region=name.region, account_id=name.account_id)

    def _log_listing(self, group: Group, root: str, window_start: datetime,
                     part: "Part | None" = None) -> tuple[str, str, str]:
        """The log folder's listing (of a part of the window): (folder, list after this key, stop after this day)."""
        folder = f"{root}CloudTrail/{group.region}/"
        lo = part.lo if part is not None and part.lo is not None else window_start
        hi = part.hi - timedelta(minutes=1) if part is not None and part.hi is not None else self.window_end
        return folder, folder + (lo - timedelta(days=1)).strftime("%Y/%m/%d"), hi.strftime("%Y/%m/%d")

    def _log_folder(self, group: Group, root: str, window_start: datetime, listed: ListedLogs | None = None,
                    part: "Part | None" = None) -> Iterator[tuple[ObjectRef, KeyName]]:
        """The log files in the group's log folder whose time lies in the window (original locations). With
        `listed`, the folder is listed a day at a time (_listing_by_day), the first page of each day's listing
        the size of what the digests list that day; without, in one listing (what --state replays)."""
        folder, start_after, last_day = self._log_listing(group, root, window_start, part)
        if listed is None:
            objects = self._listing(folder, start_after, None, last_day)
        else:
            objects = self._listing_by_day(folder, start_after, last_day,
                                           lambda lo, hi: self._listed_between(listed, lo, hi))
        for obj in objects:
            original = self.locations.to_original(obj.ref)
            name = parse_key(original.key)
            if name is None or name.is_digest:
                self._stray(obj.ref, "in the log folder")
                continue
            if (window_start <= name.time + timedelta(seconds=59) and name.time <= self.window_end
                    and (part is None or part.owns_time(name.time))):
                yield original, name

    def _listing(self, folder: str, after: str | None, until: str | None, last_day: str,
                 expected: int | None = None) -> Iterator[ListedObject]:
        """The objects of `folder` after `after` (up to `until`), stopping at the first key of a day after
        `last_day` (keys of a day-dated folder sort by day)."""
        listing = (self.source.list(self.plan.bucket, folder, after) if until is None or after is None else
                   self.source.list_range(self.plan.bucket, folder, after, until, expected))
        for obj in listing:
            if obj.ref.key[len(folder):len(folder) + 10] > last_day:
                return
            yield obj

    def _listing_by_day(self, folder: str, start_after: str, last_day: str,
                        expected: Callable[[str, str], int | None]) -> Iterator[ListedObject]:
        """What _listing(folder, start_after, None, last_day) yields, in the same order, but listed one day at a
        time, DAYS_AHEAD days ahead of the one being taken.

        The listing after `FOLDER/D0` (`start_after`, a day's name) is cut at `FOLDER/D1`, `FOLDER/D2`, ...
        (each next day's name): day i's listing holds the keys after `FOLDER/Di` up to `FOLDER/Di+1`, the last
        one stops where the whole listing stops. These ranges meet end to end, so a key outside any day folder
        (a stray) is still found in the one range that holds it, and no key is found twice. `expected(lo, hi)`
        is the source's hint for the size of a range's first page."""
        first = datetime.strptime(start_after[len(folder):], "%Y/%m/%d").replace(tzinfo=UTC)
        bounds = [start_after]
        day = first
        while day.strftime("%Y/%m/%d") < last_day:
            day += timedelta(days=1)
            bounds.append(folder + day.strftime("%Y/%m/%d"))
        ranges: list[tuple[str, str | None]] = [*zip(bounds, bounds[1:]), (bounds[-1], None)]
        pending: deque[Future[list[ListedObject]]] = deque()
        todo = iter(ranges)
        ahead = DAYS_AHEAD if self.config.workers > 1 else 1  # one worker lists each day when it is its turn
        try:
            while True:
                while len(pending) < ahead:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    lo, hi = nxt
                    hint = expected(lo, hi) if hi is not None else None
                    pending.append(self._list_ahead(lambda *a: list(self._listing(*a)), folder, lo, hi, last_day, hint))
                if not pending:
                    return
                yield from pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()

    def _listed_between(self, listed: ListedLogs, after: str, until: str) -> int:
        """How many log files the digests list with keys in (after, until] of the folder as listed."""
        return listed.count_between(self.locations.to_original(ObjectRef(self.plan.bucket, after)),
                                    self.locations.to_original(ObjectRef(self.plan.bucket, until)))

    def _lost_digests(self, checked: list[CheckedDigest], missing: list[DigestRecord]) -> "LostDigests":
        """The spans of this group's digests that were lost (unreadable, invalid, deleted)."""
        lost = LostDigests(horizon=self.config.backfill_horizon)
        for d in checked:
            span = _span(d) if not d.trusted else None
            if span is None:
                continue
            if d.backfill:
                lost.backfill_times.append(span[1])
            else:
                lost.spans.append(span)
        for m in missing:
            if m.end_time is None:
                continue
            if m.backfill:
                lost.backfill_times.append(m.end_time)
            elif m.start_time is not None:
                lost.spans.append((m.start_time, m.end_time))
        return lost

    def _classify_unlisted(self, t: datetime, coverage: list[tuple[datetime, datetime]],
                           newest_end: datetime | None, latest: datetime,
                           lost: "LostDigests | None" = None) -> Verdict:
        covered = any(s - timedelta(minutes=1) <= t <= e for s, e in coverage)
        if covered:
            if self.reference_time - t < self.config.backfill_horizon:
                return Verdict(PENDING, "awaiting_digest",
                               f"no digest lists it yet; a backfill digest may still list it "
                               f"(younger than {self.config.backfill_horizon})")
            excuse = lost.excuse(t, coverage) if lost is not None else None
            if excuse is not None:
                return Verdict(UNVERIFIABLE, "not_covered", excuse)
            return Verdict(INVALID, "unreferenced",
                           "no digest lists this log file, though valid digests cover its time (injected)")
        if (newest_end is None or t > newest_end) and t >= latest - PENDING_WINDOW:
            return Verdict(PENDING, "awaiting_digest", "newer than the region's newest digest; its digest is not written yet")
        return Verdict(UNVERIFIABLE, "not_covered", "no valid digest covers the time of this log file")


@dataclass(frozen=True)
class Part:
    """A part of a group's window, by digest end time and log file time: [lo, hi); lo None: from the window's
    start (the first part), hi None: to its end (the last). A part lists its digests with PART_MARGIN on both
    sides, for the links, gaps and holes at its edges and the log files its neighbours list, but reports only
    what it owns: digests ending in it (and what is missing or a gap before them), log files of its time."""

    lo: datetime | None
    hi: datetime | None

    @property
    def first(self) -> bool:
        return self.lo is None

    @property
    def last(self) -> bool:
        return self.hi is None

    @property
    def whole(self) -> bool:
        return self.lo is None and self.hi is None

    def owns_time(self, t: datetime) -> bool:
        return (self.lo is None or t >= self.lo) and (self.hi is None or t < self.hi)

    def owns(self, d: CheckedDigest) -> bool:
        end = end_of(d)
        return self.whole or (end is not None and self.owns_time(end))

    def next(self, window_end: datetime) -> "Part":
        assert self.hi is not None
        hi = self.hi + timedelta(days=PART_DAYS)
        return Part(self.hi, hi if hi < window_end else None)


@dataclass
class Carry:
    """What a group's parts hand on: the window's start, the newest digest of each chain (the neighbour of
    a gap or hole that spans a part's start), the gaps and the verified log files near them."""

    window_start: datetime | None = None
    newest: dict[bool, CheckedDigest] = field(default_factory=dict)  # backfill? -> digest
    gaps: list[GapRecord] = field(default_factory=list)
    near_gaps: dict[tuple[str, str], LogRecord] = field(default_factory=dict)  # by (bucket, key), in order
    tail: list[tuple[datetime, LogRecord]] = field(default_factory=list)  # from the newest digest's end - TAIL
    _checked_gaps: int = 0

    def keep_near_gaps(self, v: "Validation", tail_from: datetime | None) -> None:
        """At a part's log files: the tail of the parts before near a gap found since, and the tail cut to
        what the newest digest now leaves (nothing, in the last part: no part comes after it)."""
        new = self.gaps[self._checked_gaps:]
        for _, r in self.tail if new else ():
            if v._near_a_gap(r, new):
                self.near_gaps.setdefault((r.bucket, r.key), r)
        self._checked_gaps = len(self.gaps)
        self.tail = [(t, r) for t, r in self.tail if tail_from is not None and t >= tail_from]

    def take(self, v: "Validation", rec: LogRecord, tail_from: datetime | None) -> None:
        """A verified log file of this part."""
        if self.gaps and v._near_a_gap(rec, self.gaps):
            self.near_gaps.setdefault((rec.bucket, rec.key), rec)
        if tail_from is None:
            return
        name = parse_key(v.locations.to_original(ObjectRef(rec.bucket, rec.key)).key)
        if name is not None and name.time >= tail_from:
            self.tail.append((name.time, rec))


def _neighbour(d: CheckedDigest) -> CheckedDigest:
    """A digest as the next part sees it: a neighbour for its links and gaps, with no log list of its own."""
    return CheckedDigest(lies_at=d.lies_at, original=d.original, verdict=d.verdict, digest=d.digest,
                         sha256=d.sha256, signature=d.signature, backfill=d.backfill, in_range=False)


@dataclass
class GroupDigests:
    """A group after its digests were checked and linked: what its log files' part needs."""

    group: Group
    root: str
    window_start: datetime
    digest_records: list[DigestRecord]
    regular: ChainFindings
    backfill: ChainFindings
    lost: "LostDigests"
    foreign: list[ObjectRef]  # other trails' digests in the same folder
    listed: ListedLogs  # the log lists of `checked`, on disk
    part: Part = field(default_factory=lambda: Part(None, None))
    carry: Carry = field(default_factory=Carry)


@dataclass
class LostDigests:
    """Where a group's digests were lost (unreadable, invalid or deleted), for the log files no digest lists.

    A log key has minute resolution, so a log file of a digest's first or last minute also lies in the
    one-minute slack of its neighbour's span; and a backfill digest may list any log file of its horizon.
    When that digest is lost, such a log file has lost its proof: `not_covered`, not `unreferenced`. A log
    file well inside a trusted digest's span is not excused by a lost neighbour: it stays `unreferenced`.
    """

    horizon: timedelta
    spans: list[tuple[datetime, datetime]] = field(default_factory=list)  # regular digests
    backfill_times: list[datetime] = field(default_factory=list)

    def excuse(self, t: datetime, coverage: list[tuple[datetime, datetime]]) -> str | None:
        slack = timedelta(minutes=1)
        deep = any(s + slack < t < e - slack for s, e in coverage)
        for s, e in self.spans:
            if s - slack <= t <= e and not deep:
                return (f"no valid digest lists it: the digest for {format_time(s)} to {format_time(e)}, "
                        "whose span holds its minute, was lost (unreadable, invalid or deleted)")
        for bt in self.backfill_times:
            if bt - self.horizon <= t <= bt:
                return (f"no valid digest lists it: a backfill digest of {format_time(bt)}, which may list it, "
                        "was lost (unreadable, invalid or deleted)")
        return None


def _span(d: CheckedDigest) -> tuple[datetime, datetime] | None:
    """A digest's span: its own fields when trusted; else from its key name (content is the attacker's)."""
    if d.trusted and d.digest is not None:
        return d.digest.start_time, d.digest.end_time
    end = end_of(d) if d.digest is None else (parse_key(d.original.key).time if parse_key(d.original.key) else None)
    return (end - timedelta(hours=1), end) if end is not None else None


def _read_capped(chunks: Iterable[bytes], cap: int) -> bytes:
    buf = bytearray()
    for c in chunks:
        buf += c
        if len(buf) > cap:
            raise IntegrityError(f"larger than {cap} bytes")
    return bytes(buf)


def _encryption_from(info: TrailInfo | None, cfg: RunConfig) -> EncryptionPolicy:
    if info is None:
        return EncryptionPolicy(known=False, extra_log_keys=cfg.extra_log_keys)
    return EncryptionPolicy(known=True, trail_kms_key=info.kms_key_id, extra_log_keys=cfg.extra_log_keys,
                            bucket_default_key=info.bucket_default_key)


__all__ = ["Validation", "bounded_map", "Group", "Plan", "MAX_DIGEST_UNCOMPRESSED", "VALID"]
