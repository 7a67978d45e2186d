"""The engine interface, and the local engine: the run's own bounded thread pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

from ..core.verify import CheckedDigest
from ..model import LogFileRef, ObjectRef
from ..results import LogRecord

if TYPE_CHECKING:  # the pipeline imports this module
    from ..pipeline import Validation


class Engine(Protocol):
    """Maps the per-object checks of a Validation over a list; results come back in input order, one each."""

    def map_digests(self, validation: "Validation", refs: Sequence[ObjectRef]) -> Iterator[CheckedDigest]: ...

    def map_logs(self, validation: "Validation",
                 items: Sequence[tuple[LogFileRef, CheckedDigest]]) -> Iterator[LogRecord]: ...

    def close(self) -> None: ...


class LocalEngine:
    """Threads of this process, at most `4 * workers` tasks in flight (Validation's pool and window)."""

    name = "local"

    def map_digests(self, validation: "Validation", refs: Sequence[ObjectRef]) -> Iterator[CheckedDigest]:
        from ..pipeline import bounded_map
        return bounded_map(validation._pool, validation._fetch_digest, refs, validation._window)

    def map_logs(self, validation: "Validation",
                 items: Sequence[tuple[LogFileRef, CheckedDigest]]) -> Iterator[LogRecord]:
        from ..pipeline import bounded_map
        return bounded_map(validation._pool, validation._check_listed_log, items, validation._window)

    def close(self) -> None:
        pass
