"""The log files a group's digests list, kept on disk while the group is checked.

A region's year of history lists hundreds of thousands of log files. Held in memory (in each
digest, in the set of listed keys, in the list of work) they made a run's memory grow with the
history. Here the lists go into a private temporary SQLite database as each digest is checked
(`shelve`); once chain linking has decided which digests are trusted and in range, `rank` keeps,
for each log file, the first digest that lists it in the pipeline's order (as `dict.setdefault`
did), and the work comes back page by page (`to_hash`). Whether a log file of the folder's listing
is listed is one indexed lookup (`lists`). Memory stays at SQLite's page cache and one page.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Iterable, Iterator

from .core.verify import CheckedDigest, compact
from .model import LogFileRef, ObjectRef

BATCH = 512  # log files shelved in memory before they are written, in one transaction
PAGE = 256  # log files fetched from disk at a time (a page is what memory holds of them)
CACHE_KIB = 4096

_SCHEMA = """
CREATE TABLE listed (digest INTEGER NOT NULL, pos INTEGER NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
                     alg TEXT NOT NULL, hash TEXT NOT NULL, newest TEXT, oldest TEXT);
CREATE TABLE ranks (digest INTEGER PRIMARY KEY, rank INTEGER NOT NULL, in_range INTEGER NOT NULL);
CREATE TABLE winners (seq INTEGER PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, alg TEXT NOT NULL,
                      hash TEXT NOT NULL, newest TEXT, oldest TEXT, digest INTEGER NOT NULL,
                      in_range INTEGER NOT NULL, UNIQUE (bucket, key));
CREATE TABLE others (bucket TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID;
"""


class ListedLogs:
    """One group's digests' log lists, on disk. Thread-safe (one connection behind a lock)."""

    def __init__(self) -> None:
        # "" is a private temporary database on disk, deleted when the connection closes
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._digests: dict[int, CheckedDigest] = {}
        self._rows: list[tuple] = []  # shelved, not yet written: written BATCH at a time, in one transaction
        self._ranked = False

    def shelve(self, d: CheckedDigest) -> CheckedDigest:
        """Take the digest's log list out of memory (its count stays: `d.log_count`), and compact the rest."""
        if d.shelved is not None:
            return d
        if d.digest is None:
            return compact(d)
        logs = d.digest.log_files
        with self._lock:
            n = len(self._digests)
            self._digests[n] = d
            self._rows += ((n, i, lf.ref.bucket, lf.ref.key, lf.hash_algorithm, lf.hash_value, lf.newest_event_time,
                            lf.oldest_event_time) for i, lf in enumerate(logs))
            if len(self._rows) >= BATCH:
                self._flush()
        d.shelved, d.log_count = n, len(logs)
        return compact(d)

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO listed VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._rows)
        self._db.commit()
        self._rows = []

    def rank(self, ordered: Iterable[CheckedDigest]) -> None:
        """Which digest lists each log file: the first of `ordered` (trusted ones only) that lists it."""
        rows = [(d.shelved, i, int(d.in_range)) for i, d in enumerate(ordered)
                if d.shelved is not None and d.trusted and d.digest is not None]
        with self._lock:
            self._flush()
            self._db.execute("DELETE FROM ranks")
            self._db.execute("DELETE FROM winners")
            self._db.executemany("INSERT INTO ranks VALUES (?, ?, ?)", rows)
            self._db.execute(
                "INSERT OR IGNORE INTO winners (bucket, key, alg, hash, newest, oldest, digest, in_range) "
                "SELECT l.bucket, l.key, l.alg, l.hash, l.newest, l.oldest, l.digest, r.in_range "
                "FROM listed l JOIN ranks r ON r.digest = l.digest ORDER BY r.rank, l.pos")
            self._db.commit()
            self._ranked = True
            # what a log file's record needs of its digest is where it lies: the rest may go
            self._digests = {n: CheckedDigest(lies_at=d.lies_at, original=d.original, verdict=d.verdict,
                                              backfill=d.backfill, in_range=d.in_range, shelved=n)
                             for n, d in self._digests.items()}

    def to_hash(self) -> Iterator[tuple[LogFileRef, CheckedDigest]]:
        """The log files listed by trusted in-range digests, each once, in order; a page at a time."""
        assert self._ranked, "rank() first"
        after = 0
        while True:
            with self._lock:
                page = self._db.execute(
                    "SELECT seq, bucket, key, alg, hash, newest, oldest, digest FROM winners "
                    "WHERE seq > ? AND in_range ORDER BY seq LIMIT ?", (after, PAGE)).fetchall()
            if not page:
                return
            for seq, bucket, key, alg, hash_value, newest, oldest, digest in page:
                yield LogFileRef(ObjectRef(bucket, key), hash_value, alg, newest, oldest), self._digests[digest]
            after = page[-1][0]

    def count_between(self, after: ObjectRef, until: ObjectRef) -> int:
        """How many log files trusted digests list with keys in (after, until] of one bucket."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM winners WHERE bucket = ? AND key > ? AND key <= ?",
                                    (after.bucket, after.key, until.key)).fetchone()[0]

    def add_others(self, refs: Iterable[ObjectRef]) -> None:
        """Log files other trails' digests list (so they are not this trail's unlisted ones)."""
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO others VALUES (?, ?)", ((r.bucket, r.key) for r in refs))
            self._db.commit()

    def lists(self, ref: ObjectRef) -> bool:
        """Whether a trusted digest of the group (in range or not) lists this log file."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM winners WHERE bucket = ? AND key = ?",
                                    (ref.bucket, ref.key)).fetchone() is not None

    def others_list(self, ref: ObjectRef) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM others WHERE bucket = ? AND key = ?",
                                    (ref.bucket, ref.key)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._digests.clear()
