"""The Dask engine: the pipeline's per-object checks, run as partitions on a Dask distributed cluster.

What runs where:

- The driver (this process) does everything but the per-object work, exactly as with the
  local engine: discovery, listing, pointer following, chain links, gaps, unlisted logs.
- Each task is one partition: consecutive digests of one account, region and day (or the
  log files those digests list), at most `PARTITION_MAX` objects. On the worker it builds,
  once per process, its own Source from a small picklable `SourceSpec` (S3 through the
  worker's own credential chain: environment, instance profile, IRSA, a named profile; or
  an evidence directory at the same path), and runs the same `Validation` checks
  (`object_checker`). Credentials never travel: the spec holds an endpoint, a region and a
  profile name; the key ring (public keys) and the encryption policy are the driver's.
- Only small facts come back: a CheckedDigest (the parsed digest's fields and log refs, its
  SHA-256, signature and verdict) per digest, a LogRecord per log file.
- At most `in_flight` partitions are submitted at a time, and results are taken in
  submission order (back-pressure): the record order is the local engine's, and the
  driver never holds more than `in_flight` partitions of results it has not consumed.
- Tasks are pure (they read and verify, nothing else), so a lost worker's partitions are
  recomputed elsewhere by the scheduler (`retries` covers a task that raised), and the
  driver takes exactly one result per partition: no record is lost or duplicated. A
  partition whose workers keep dying is reported object by object, `unverifiable` /
  `worker_lost`, rather than stopping the run.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import pickle
import threading
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..core.encryption import EncryptionPolicy
from ..core.keys import KeyRing
from ..core.verify import CheckedDigest
from ..errors import ConfigError
from ..model import LogFileRef, ObjectRef
from ..policy import LocationMap, RunConfig
from ..results import UNVERIFIABLE, LogRecord, Verdict

if TYPE_CHECKING:
    from ..pipeline import Validation
    from ..sources.base import Source

PARTITION_MAX = 64  # objects per task: a lost task costs little, yet each amortises its scheduling (~ms)
RETRIES = 3  # a task that raised is tried again this often (worker loss is the scheduler's own rescheduling)
CONNECT_TIMEOUT = 10
WORKER_WAIT = 60  # seconds to wait for a first worker on an external scheduler
WORKER_CACHE = 4  # checkers (sources, pools) kept per worker process, by run

T = TypeVar("T")


# --- what a worker needs, picklable -------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """How a worker opens the run's storage itself: no credentials, only where and as whom."""

    kind: str  # "s3" | "evidence"
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    evidence_dir: str | None = None
    manifest_sha256: str | None = None

    @classmethod
    def of(cls, source: "Source", profile: str | None = None) -> "SourceSpec":
        from ..sources.evidence import EvidenceSource
        from ..sources.s3 import S3Source
        if isinstance(source, S3Source):
            s = source.settings()
            return cls("s3", endpoint_url=s["endpoint_url"], region=s["region"], profile=profile)
        if isinstance(source, EvidenceSource):
            return cls("evidence", evidence_dir=os.path.abspath(source.root), manifest_sha256=source.manifest_sha256)
        raise ConfigError(f"--engine dask reads live S3 or an evidence directory, not a {type(source).__name__}")

    def open(self, workers: int) -> "Source":
        """On the worker. An evidence directory must be the driver's (same seal), else the run stops."""
        if self.kind == "s3":
            from ..sources.s3 import S3Source
            return S3Source.create(endpoint_url=self.endpoint_url, region=self.region, profile=self.profile,
                                   workers=workers)
        from ..sources.evidence import EvidenceSource
        source = EvidenceSource(self.evidence_dir or "")
        if source.manifest_sha256 != self.manifest_sha256:
            raise ConfigError(f"a Dask worker sees another evidence directory at {self.evidence_dir} (manifest "
                              f"{source.manifest_sha256}, the driver's is {self.manifest_sha256})")
        return source


@dataclass(frozen=True)
class CheckSpec:
    """Everything a task needs besides its partition; `token` names it in the workers' caches."""

    source: SourceSpec
    config: RunConfig
    keys: KeyRing
    encryption: EncryptionPolicy
    locations: LocationMap
    token: str = ""

    @classmethod
    def of(cls, v: "Validation", profile: str | None) -> "CheckSpec":
        spec = cls(SourceSpec.of(v.source, profile), v.config, v.keys or KeyRing(), v.encryption, v.locations)
        return replace(spec, token=hashlib.sha256(pickle.dumps(spec)).hexdigest())


_checkers: OrderedDict[str, "Validation"] = OrderedDict()
_checkers_lock = threading.Lock()


def _checker(spec: CheckSpec) -> "Validation":
    """This worker process's checker for a run: built once, then reused by every task of the run."""
    with _checkers_lock:
        v = _checkers.get(spec.token)
        if v is not None:
            _checkers.move_to_end(spec.token)
            return v
        from ..pipeline import Validation
        v = Validation.object_checker(spec.source.open(spec.config.workers), spec.config, spec.keys,
                                      spec.encryption, spec.locations)
        _checkers[spec.token] = v
        while len(_checkers) > WORKER_CACHE:
            _, old = _checkers.popitem(last=False)
            old._pool.shutdown(wait=False)
            old.source.close()
        return v


@dataclass(frozen=True)
class HistorySlice:
    """The part of the driver's bucket history (validator.history) that one partition's objects need:
    their versions, when altered. What the worker's hooks learn goes back with the results."""

    protection: Any = None  # BucketProtection
    keys: tuple[tuple[ObjectRef, list[Any]], ...] = ()  # lies_at -> [ObjectVersion], newest first
    more_versions: tuple[tuple[ObjectRef, int], ...] = ()

    @classmethod
    def of(cls, v: "Validation", refs: Iterable[ObjectRef]) -> "HistorySlice | None":
        h = getattr(v, "history", None)
        if h is None:
            return None
        keys = tuple((r, h.keys[r]) for r in refs if r in h.keys)
        more = tuple((r, h.more_versions[r]) for r, _ in keys if r in h.more_versions)
        return cls(h.protection, keys, more)


@dataclass
class Learned:
    """What a task's history hooks found: retention headers seen, deleted digests recovered."""

    locks: dict[ObjectRef, Any]
    recovered: dict[ObjectRef, Any]


def _task_checker(spec: CheckSpec, hist: HistorySlice | None) -> "Validation":
    """The worker's checker for one task: shared source, keys and pool, a history of the task's own."""
    from ..history import History
    v = copy.copy(_checker(spec))
    v.history = History(v, hist.protection if hist else None)  # per task: what it learns goes back with it
    if hist is not None:
        v.history.keys = dict(hist.keys)
        v.history.more_versions = dict(hist.more_versions)
    return v


def _learned(v: "Validation") -> Learned | None:
    h = getattr(v, "history", None)
    return Learned(dict(h.locks), dict(h.recovered)) if h is not None else None


# --- the tasks (module functions: workers import them by name) ------------------------------------


def check_digests(spec: CheckSpec, refs: list[ObjectRef],
                  hist: HistorySlice | None = None) -> tuple[list[CheckedDigest], Learned | None]:
    from ..pipeline import bounded_map
    v = _task_checker(spec, hist)
    return list(bounded_map(v._pool, v._fetch_digest, refs, v._window)), _learned(v)


def check_logs(spec: CheckSpec, items: list[tuple[LogFileRef, ObjectRef]],
               hist: HistorySlice | None = None) -> tuple[list[LogRecord], Learned | None]:
    """Hash log files; each comes with where its listing digest lies (all a LogRecord names of it)."""
    from ..pipeline import bounded_map
    v = _task_checker(spec, hist)
    full = [(lf, CheckedDigest(lies_at=at, original=at, verdict=Verdict.valid())) for lf, at in items]
    return list(bounded_map(v._pool, v._check_listed_log, full, v._window)), _learned(v)


# --- partitions ------------------------------------------------------------------------------------


def partitions(items: Iterable[T], folder_of: Callable[[T], str], limit: int = PARTITION_MAX) -> Iterator[list[T]]:
    """Consecutive runs of items in one folder (account, region, day), in input order, each run cut into
    the fewest near-equal parts of at most `limit` (72 objects: 36 + 36, not 64 + 8, so workers share evenly)."""
    run: list[T] = []
    current: str | None = None
    for item in items:
        folder = folder_of(item)
        if run and folder != current:
            yield from _even(run, limit)
            run = []
        current = folder
        run.append(item)
    if run:
        yield from _even(run, limit)


def _even(run: list[T], limit: int) -> Iterator[list[T]]:
    n = -(-len(run) // max(1, limit))
    size, extra = divmod(len(run), n)
    at = 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        yield run[at:at + step]
        at += step


def _folder(key: str) -> str:
    return key.rpartition("/")[0]


# --- the engine --------------------------------------------------------------------------------------


def local_cluster(n_workers: int, env: dict[str, str] | None = None, threads_per_worker: int = 1) -> Any:
    """A distributed.LocalCluster of worker processes on this machine, listening on loopback only
    (scheduler, workers, and the scheduler's HTTP endpoint; no dashboard). `env`: the workers' extra
    environment (their own AWS settings, as on a real cluster)."""
    import distributed
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                                    host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                    scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR,
                                    env=dict(env or {}))



class DaskEngine:
    """Submits partitions to a Dask cluster with bounded in-flight work; results in input order."""

    name = "dask"

    def __init__(self, client: Any, cluster: Any = None, profile: str | None = None,
                 in_flight: int | None = None, partition_max: int = PARTITION_MAX,
                 lost_errors: tuple[type[BaseException], ...] | None = None):
        self.client = client
        self.cluster = cluster  # the LocalCluster this engine started, closed with it
        self.profile = profile
        self._in_flight = in_flight
        self.partition_max = partition_max
        self._lost_errors = lost_errors  # what a future raises when its workers kept dying (KilledWorker)
        self._specs: dict[int, CheckSpec] = {}
        self._run = uuid.uuid4().hex[:12]
        self._n = 0

    @classmethod
    def connect(cls, scheduler: str | None, profile: str | None = None,
                local_workers: int | None = None) -> "DaskEngine":
        """A client of the scheduler at `scheduler`, or of a LocalCluster of worker processes started here."""
        try:
            import distributed
        except ImportError:
            raise ConfigError("--engine dask needs Dask distributed: pip install 'ctvalidate[dask]'") from None
        cluster = None
        try:
            if scheduler:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
                try:
                    client.wait_for_workers(1, timeout=WORKER_WAIT)
                except (TimeoutError, OSError):
                    client.close()
                    raise ConfigError(f"the Dask scheduler at {scheduler} has no workers "
                                      f"(waited {WORKER_WAIT}s)") from None
            else:
                cluster = local_cluster(local_workers or max(1, min(8, os.cpu_count() or 1)))
                client = distributed.Client(cluster, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            if cluster is not None:
                cluster.close()
            where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise ConfigError(f"cannot reach {where}: {exc}") from None
        return cls(client, cluster, profile=profile)

    # --- the Engine interface ---------------------------------------------------------------------

    def map_digests(self, validation: "Validation", refs: Sequence[ObjectRef]) -> Iterator[CheckedDigest]:
        spec = self._spec(validation)
        parts = partitions(refs, lambda r: _folder(r.key), self.partition_max)
        return self._map(check_digests, spec, parts, _lost_digests(validation), validation, lambda part: part)

    def map_logs(self, validation: "Validation",
                 items: Sequence[tuple[LogFileRef, CheckedDigest]]) -> Iterator[LogRecord]:
        spec = self._spec(validation)
        small = ((lf, d.lies_at) for lf, d in items)  # the digest travels as its location only
        parts = partitions(small, lambda it: _folder(it[1].key), self.partition_max)
        return self._map(check_logs, spec, parts, _lost_logs(validation), validation,
                         lambda part: [validation.locations.to_copy(lf.ref) for lf, _ in part])

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    # --- internals ----------------------------------------------------------------------------------

    def _spec(self, v: "Validation") -> CheckSpec:
        spec = self._specs.get(id(v))
        if spec is None:
            spec = self._specs[id(v)] = CheckSpec.of(v, self.profile)
        return spec

    def in_flight(self) -> int:
        """Partitions submitted at once: two per worker thread, so that no worker waits for the driver."""
        if self._in_flight:
            return self._in_flight
        try:
            threads = sum(self.client.nthreads().values())
        except (OSError, TimeoutError):
            threads = 1
        return max(2, 2 * threads)

    def _map(self, fn: Callable[..., tuple[list, Learned | None]], spec: CheckSpec, parts: Iterable[list],
             lost: Callable[[list, BaseException], list], v: "Validation",
             refs_of: Callable[[list], list[ObjectRef]]) -> Iterator[Any]:
        pending: deque[tuple[Any, list]] = deque()
        window = self.in_flight()
        try:
            for part in parts:
                self._n += 1
                key = f"ctvalidate-{fn.__name__}-{self._run}-{self._n}"
                hist = HistorySlice.of(v, refs_of(part))
                pending.append((self.client.submit(fn, spec, part, hist, key=key, retries=RETRIES, pure=False),
                                part))
                if len(pending) >= window:
                    yield from self._take(pending.popleft(), lost, self._lost(), v)
            while pending:
                yield from self._take(pending.popleft(), lost, self._lost(), v)
        finally:
            for fut, _ in pending:  # interrupted, or an error: nothing left running for this run
                fut.cancel()

    def _lost(self) -> tuple[type[BaseException], ...]:
        if self._lost_errors is None:
            from distributed import KilledWorker
            self._lost_errors = (KilledWorker,)
        return self._lost_errors

    @staticmethod
    def _take(entry: tuple[Any, list], lost: Callable[[list, BaseException], list],
              lost_errors: tuple[type[BaseException], ...], v: "Validation") -> list:
        fut, part = entry
        try:
            result, learned = fut.result()
            _merge(v, learned)
        except lost_errors as exc:
            result = lost(part, exc)
        except ConfigError as exc:  # e.g. a worker without credentials: the run cannot go on
            raise ConfigError(f"on a Dask worker: {exc}") from None
        finally:
            fut.release()
        if len(result) != len(part):  # one result per object, whatever happened on the cluster
            raise RuntimeError(f"a Dask task returned {len(result)} results for {len(part)} objects")
        return result


def _merge(v: "Validation", learned: Learned | None) -> None:
    """What the workers' history hooks found joins the driver's history, as if its own hooks had run."""
    h = getattr(v, "history", None)
    if learned is None or h is None:
        return
    with h._lock:
        h.locks.update(learned.locks)
        h.recovered.update(learned.recovered)


def _lost_verdict(exc: BaseException) -> Verdict:
    tries = getattr(exc, "allowed_failures", None)
    times = f"{tries + 1} times" if isinstance(tries, int) else "repeatedly"
    return Verdict(UNVERIFIABLE, "worker_lost", f"the Dask workers checking it died {times} (distributed's "
                   "allowed-failures); check the workers' memory and logs, then validate again")


def _lost_digests(v: "Validation") -> Callable[[list, BaseException], list[CheckedDigest]]:
    from ..model import parse_key

    def lost(part: list[ObjectRef], exc: BaseException) -> list[CheckedDigest]:
        out = []
        for ref in part:
            original = v.locations.to_original(ref)
            name = parse_key(original.key)
            out.append(CheckedDigest(lies_at=ref, original=original, verdict=_lost_verdict(exc),
                                     backfill=bool(name and name.backfill)))
        return out
    return lost


def _lost_logs(v: "Validation") -> Callable[[list, BaseException], list[LogRecord]]:
    from ..model import parse_key

    def lost(part: list[tuple[LogFileRef, ObjectRef]], exc: BaseException) -> list[LogRecord]:
        out = []
        for lf, at in part:
            lies_at = v.locations.to_copy(lf.ref)
            name = parse_key(lf.ref.key)
            out.append(LogRecord(bucket=lies_at.bucket, key=lies_at.key, verdict=_lost_verdict(exc),
                                 digest_key=at.key, region=name.region if name else None,
                                 account_id=name.account_id if name else None))
        return out
    return lost


__all__ = ["CheckSpec", "DaskEngine", "SourceSpec", "check_digests", "check_logs", "local_cluster", "partitions"]
