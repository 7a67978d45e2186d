"""The evidence directory's manifest index (validator.sources.evidence): on disk, with the dict's semantics.

The reference below is the in-memory index the source used to hold (a dict per bucket, later lines replacing
earlier ones, sorted key lists and bisect): the on-disk index must answer every listing and lookup the same,
with memory that does not grow with the manifest.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import os
import tempfile
import threading
import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from validator.errors import ConfigError, EvidenceModifiedError, NotFoundError, SourceError
from validator.model import ObjectRef
from validator.sources.evidence import MAX_MANIFEST_LINE, EvidenceSource, object_path

HEADER = {"format": "ctvalidate-evidence", "version": 1, "acquired_at": "2026-01-02T00:00:00Z", "trail": None,
          "public_keys": {"file": "public-keys.json", "sha256": "0" * 64}}


def _line(bucket: str, key: str, n: int, **extra) -> dict:
    return {"bucket": bucket, "key": key, "file": None, "sha256": None, "size": n, "etag": f"e{n}",
            "version_id": None, "last_modified": f"2026-01-01T00:{n % 60:02d}:00Z", "storage_class": "STANDARD",
            "sse": "AES256", "kms_key_id": None, "metadata": {"n": str(n)}, "error": None, **extra}


def _write(root: Path, lines: list[dict], tail: bytes = b"\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.jsonl").write_bytes(b"\n".join(orjson.dumps(x) for x in [HEADER, *lines]) + tail)
    return root


class Reference:
    """The old in-memory index, kept here as the specification."""

    def __init__(self, lines: list[dict]):
        self.entries: dict[str, dict[str, dict]] = {}
        self.versions: dict[str, dict[str, list[dict]]] = {}
        for d in lines:
            if "is_latest" in d:
                self.versions.setdefault(d["bucket"], {}).setdefault(d["key"], []).append(d)
            else:
                self.entries.setdefault(d["bucket"], {})[d["key"]] = d
        self.sorted = {b: sorted(e) for b, e in self.entries.items()}
        self.sorted_versions = {b: sorted(e) for b, e in self.versions.items()}

    def list(self, bucket: str, prefix: str, start_after: str | None) -> list[tuple[str, int]]:
        keys = self.sorted.get(bucket, [])
        lo = bisect.bisect_left(keys, prefix)
        if start_after is not None and start_after >= prefix:
            lo = bisect.bisect_right(keys, start_after)
        out = []
        for key in keys[lo:]:
            if not key.startswith(prefix):
                break
            out.append((key, self.entries[bucket][key]["size"]))
        return out

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        out: list[str] = []
        keys = self.sorted.get(bucket, [])
        i = bisect.bisect_left(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix):
            rest = keys[i][len(prefix):]
            if "/" not in rest:
                i += 1
                continue
            name = rest.split("/", 1)[0]
            out.append(name)
            i = bisect.bisect_left(keys, prefix + name + "0")
        return out

    def list_versions(self, bucket: str, prefix: str, marker: str | None) -> list[tuple[str, str, int]]:
        keys = self.sorted_versions.get(bucket, [])
        lo = bisect.bisect_left(keys, prefix)
        if marker is not None and marker >= prefix:
            lo = bisect.bisect_right(keys, marker)
        out = []
        for key in keys[lo:]:
            if not key.startswith(prefix):
                break
            out += [(key, d["version_id"], d["size"]) for d in self.versions[bucket][key]]
        return out


def _listed(src: EvidenceSource, bucket: str, prefix: str, start_after: str | None) -> list[tuple[str, int]]:
    return [(o.ref.key, o.size) for o in src.list(bucket, prefix, start_after)]


def _versions(src: EvidenceSource, bucket: str, prefix: str, marker: str | None) -> list[tuple[str, str, int]]:
    return [(v.ref.key, v.version_id, v.size) for v in src.list_versions(bucket, prefix, marker)]


def _agrees(src: EvidenceSource, ref: Reference, lines: list[dict], probes: list[str]) -> None:
    for bucket in ["b", "c"]:  # a listing says what a HEAD says
        for o in src.list(bucket, ""):
            m = src.head(o.ref)
            assert (o.ref, o.size, o.etag, o.last_modified, o.storage_class, o.version_id) == \
                (m.ref, m.size, m.etag, m.last_modified, m.storage_class, m.version_id)
    for bucket in ["b", "c", "", "missing"]:
        for prefix in probes:
            assert src.list_folders(bucket, prefix) == ref.list_folders(bucket, prefix), (bucket, prefix)
            for after in [None, *probes]:
                assert _listed(src, bucket, prefix, after) == ref.list(bucket, prefix, after), (bucket, prefix, after)
                assert _versions(src, bucket, prefix, after) == ref.list_versions(bucket, prefix, after)
    for d in lines:
        r = ObjectRef(d["bucket"], d["key"])
        current = ref.entries.get(d["bucket"], {}).get(d["key"])
        if current is None:
            with pytest.raises(NotFoundError):
                src.head(r)
        else:
            m = src.head(r)
            etag = current["etag"] if isinstance(current["etag"], str) else None
            assert (m.size, m.etag, m.metadata) == (current["size"], etag, current["metadata"])


KEYS = ["a", "a/", "a/b", "a/b/c", "a/b0", "a0", "a/.x", "a//d", "é/1", "é", "z", "日本/x", "\U0001F600/y",
        "\uffff", "\x7f", "a\x00b", "A/b"]


def test_duplicates_prefixes_non_ascii_and_versions_agree_with_the_dict(tmp_path):
    lines = [_line("b", k, i) for i, k in enumerate(KEYS)]
    lines += [_line("b", "a/b", 100), _line("b", "é", 101), _line("c", "a/b", 102)]  # later lines replace
    lines += [_line("", "k", 103), _line("c", "a/b", 104, version_id="only", is_latest=True)]
    lines += [_line("b", "a/b", 200 + i, version_id=f"v{i % 2}", is_latest=i == 0, delete_marker=i == 3)
              for i in range(4)]  # v0 twice: the first one counts
    lines += [_line("b", "日本/x", 300, version_id="w", is_latest=True), _line("c", "v", 301, version_id="q",
                                                                            is_latest=False)]
    src = EvidenceSource(_write(tmp_path / "ev", lines))
    ref = Reference(lines)
    _agrees(src, ref, lines, ["", "a", "a/", "a/b", "é", "日", "\U0001F600", "\x7f", "zz", "a\x00"])
    # the order is Python's (code points), not SQLite's default for TEXT or the locale's
    assert [o.ref.key for o in src.list("b", "")] == sorted(set(KEYS))
    assert src.head(ObjectRef("b", "é")).size == 101 and src.head(ObjectRef("c", "a/b")).size == 102
    assert src.buckets() == ["", "b", "c"]
    with pytest.raises(NotFoundError, match="version v1 was not acquired"):  # the first v1 line, not the marker
        src.open_version(ObjectRef("b", "a/b"), "v1")
    with pytest.raises(EvidenceModifiedError, match="names no file"):  # v0 is the current one: its line is read
        src.open_version(ObjectRef("b", "a/b"), "v0")
    assert src.manifest_sha256 == hashlib.sha256((tmp_path / "ev" / "manifest.jsonl").read_bytes()).hexdigest()


def test_open_version_takes_the_first_line_of_a_version(tmp_path):
    lines = [_line("b", "k", 1, version_id="cur"),
             _line("b", "k", 2, version_id="old", is_latest=False, delete_marker=True),
             _line("b", "k", 3, version_id="old", is_latest=False, file="objects/_versions/x", sha256="0" * 64)]
    src = EvidenceSource(_write(tmp_path / "ev", lines))
    with pytest.raises(NotFoundError, match="a delete marker has no bytes"):
        src.open_version(ObjectRef("b", "k"), "old")
    with pytest.raises(NotFoundError, match="version nope of s3://b/k is not in the evidence directory"):
        src.open_version(ObjectRef("b", "k"), "nope")


_key = st.text(st.sampled_from(["a", "b", "/", "0", ".", "é", "日", "\U0001F600", "\x7f", "\x00"]), max_size=6)


@given(st.lists(st.tuples(st.sampled_from(["b", "c"]), _key, st.booleans()), max_size=40),
       st.lists(_key, max_size=6))
@example([("b", "a/b", False), ("b", "a0", False), ("b", "a/b", True), ("b", "a/c/d", False)], ["a", "a/"])
def test_any_manifest_lists_as_the_dict_did(items, probes):
    odd = [{}, {"etag": 7, "storage_class": None}, {"last_modified": None, "version_id": "x"}, {"size": True}]
    lines = [{**_line(b, k, i, **({"version_id": f"v{i}", "is_latest": i % 3 == 0} if versioned else {})),
              **odd[i % len(odd)]} for i, (b, k, versioned) in enumerate(items)]
    with tempfile.TemporaryDirectory() as tmp:
        src = EvidenceSource(_write(Path(tmp) / "ev", lines))
        try:
            _agrees(src, Reference(lines), lines, ["", *probes])
        finally:
            src.close()


def test_listings_page_through_more_than_one_query(tmp_path):
    """More keys than a page (512), versions of one key across a page boundary."""
    lines = [_line("b", f"k/{i:05d}", i) for i in range(1300)]
    lines += [_line("b", f"k/{i // 7:05d}", i, version_id=f"v{i}", is_latest=False) for i in range(1300)]
    src = EvidenceSource(_write(tmp_path / "ev", lines))
    ref = Reference(lines)
    for prefix, after in [("", None), ("k/", "k/00511"), ("k/00", "k/00512"), ("k/01", None)]:
        assert _listed(src, "b", prefix, after) == ref.list("b", prefix, after)
        assert _versions(src, "b", prefix, after) == ref.list_versions("b", prefix, after)
    assert len(_versions(src, "b", "", None)) == 1300


def test_threads_list_head_and_open_at_once(tmp_path):
    root = tmp_path / "ev"
    lines = []
    for i in range(300):
        key = f"AWSLogs/1/CloudTrail/r/{i % 3}/{i:04d}.json.gz"
        body = os.urandom(64 + i)
        path = root / object_path("b", key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        lines.append(_line("b", key, i, file=object_path("b", key), sha256=hashlib.sha256(body).hexdigest(),
                           size=len(body)))
    src = EvidenceSource(_write(root, lines))
    expected = {d["key"]: d["sha256"] for d in lines}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for _ in range(3):
                seen = 0
                for obj in src.list("b", f"AWSLogs/1/CloudTrail/r/{t % 3}/"):
                    assert src.head(obj.ref).size == obj.size
                    with src.open(obj.ref) as s:
                        assert hashlib.sha256(b"".join(s.chunks())).hexdigest() == expected[obj.ref.key]
                    seen += 1
                assert seen == 100
                assert src.list_folders("b", "AWSLogs/1/CloudTrail/r/") == ["0", "1", "2"]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _synthetic(root: Path, n: int) -> Path:
    lines = [_line("b", f"AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/{i // 500:02d}/"
                        f"111122223333_CloudTrail_us-east-1_{i:08d}_abcdefghijklmnop.json.gz", i,
                   file="objects/x", sha256=hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n)]
    return _write(root, lines)


def _peak(root: Path) -> int:
    tracemalloc.start()
    try:
        src = EvidenceSource(root)
        n = sum(1 for _ in src.list("b", ""))
        n += len(src.list_folders("b", "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/"))
        src.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_manifest(tmp_path):
    """Building the source and listing everything: 20,000 lines cost no more traced memory than 2,000
    (the in-memory index took about 31 MB more; see the commit)."""
    small, large = _synthetic(tmp_path / "small", 2_000), _synthetic(tmp_path / "large", 20_000)
    assert (large / "manifest.jsonl").stat().st_size > 7 << 20
    growth = _peak(large) - _peak(small)
    assert growth < 3 << 20, f"peak traced memory grew by {growth / 2**20:.1f} MiB"


def test_an_overlong_line_is_refused_without_being_held(tmp_path):
    root = _write(tmp_path / "ev", [_line("b", "k", 1)])
    with open(root / "manifest.jsonl", "ab") as f:
        f.write(b'{"bucket": "b", "key": "' + b"x" * (40 << 20) + b'"}\n')
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="manifest line 3 is too long"):
            EvidenceSource(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


@pytest.mark.parametrize("size", [MAX_MANIFEST_LINE, MAX_MANIFEST_LINE + 1, 3 * MAX_MANIFEST_LINE + 7])
def test_line_length_limit_and_blank_lines_of_any_length(tmp_path, size):
    """A line of exactly the limit is read, one byte more is refused wherever the chunks fall; a line of
    nothing but whitespace is skipped whatever its length (as the in-memory reader did)."""
    head = orjson.dumps(_line("b", "k", 1))
    line = head[:-1] + b" " * (size - len(head)) + b"}"
    assert len(line) == size
    root = tmp_path / "ev"
    _write(root, [])
    with open(root / "manifest.jsonl", "ab") as f:
        f.write(b" \t" * (size // 2 + 1) + b"\n" + line + b"\n" + b" " * size)
    if size > MAX_MANIFEST_LINE:
        with pytest.raises(ConfigError, match="manifest line 3 is too long"):
            EvidenceSource(root)
    else:
        assert [o.ref.key for o in EvidenceSource(root).list("b", "")] == ["k"]


def test_a_long_blank_line_then_content_on_the_same_line_is_too_long(tmp_path):
    root = _write(tmp_path / "ev", [])
    with open(root / "manifest.jsonl", "ab") as f:
        f.write(b" " * (2 * MAX_MANIFEST_LINE) + orjson.dumps(_line("b", "k", 1)) + b"\n")
    with pytest.raises(ConfigError, match="manifest line 2 is too long"):
        EvidenceSource(root)


def test_malformed_line_and_header_errors_are_unchanged(tmp_path):
    root = _write(tmp_path / "ev", [_line("b", "k", 1)], tail=b"\n[1]\n")
    with pytest.raises(ConfigError, match="manifest line 3 is malformed: not an object"):
        EvidenceSource(root)
    (root / "manifest.jsonl").write_bytes(b"")
    with pytest.raises(ConfigError, match="the header line is not JSON"):
        EvidenceSource(root)
    (root / "manifest.jsonl").write_bytes(orjson.dumps(HEADER))  # no newline at all: a header and no objects
    assert list(EvidenceSource(root).list("b", "")) == []


def test_seal_is_the_hash_of_every_chunk(tmp_path):
    root = _synthetic(tmp_path / "ev", 6_000)  # a few MiB: several reads
    data = (root / "manifest.jsonl").read_bytes()
    assert len(data) > 2 << 20
    src = EvidenceSource(root)
    assert src.manifest_sha256 == hashlib.sha256(data).hexdigest()
    assert sum(1 for _ in src.list("b", "AWSLogs/")) == 6_000


def test_a_prefix_that_is_not_utf8_lists_nothing_and_does_not_crash(tmp_path):
    src = EvidenceSource(_write(tmp_path / "ev", [_line("b", "a/x", 1)]))
    bad = "a/\udcff"  # what a non-UTF-8 command-line byte becomes (surrogateescape)
    assert list(src.list("b", bad)) == [] and src.list_folders("b", bad) == []
    assert [o.ref.key for o in src.list("b", "a/", start_after=bad)] == []
    with pytest.raises(NotFoundError):
        src.head(ObjectRef("b", bad))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_closing_releases_the_index_and_a_closed_source_says_so(tmp_path):
    root = _synthetic(tmp_path / "ev", 6_000)  # more than SQLite's page cache holds: the temp file is used
    before = _open_fds()
    for _ in range(8):
        src = EvidenceSource(root)
        assert sum(1 for _ in src.list("b", "")) == 6_000
        src.close()
        src.close()  # twice is harmless
    assert _open_fds() <= before
    with pytest.raises(SourceError, match="index is closed"):
        list(src.list("b", ""))
    for _ in range(8):  # never closed: dropped, as a worker's cache drops sources
        dropped = EvidenceSource(root)
        assert sum(1 for _ in dropped.list("b", "")) == 6_000
    del dropped
    gc.collect()
    assert _open_fds() <= before


def test_a_symlinked_manifest_is_refused(tmp_path):
    real = _write(tmp_path / "real", [_line("b", "k", 1)])
    root = tmp_path / "ev"
    root.mkdir()
    (root / "manifest.jsonl").symlink_to(real / "manifest.jsonl")
    with pytest.raises(ConfigError, match="is a symbolic link; refused"):
        EvidenceSource(root)


def test_the_manifest_edited_after_open_changes_nothing_the_source_says(tmp_path):
    """The source answers from the lines it hashed: rewriting manifest.jsonl mid-run cannot slip past the seal."""
    root = _write(tmp_path / "ev", [_line("b", "k", 1), _line("b", "l", 2)])
    src = EvidenceSource(root)
    _write(root, [_line("b", "k", 99, sha256="f" * 64)])  # in place, after open
    assert src.head(ObjectRef("b", "k")).size == 1 and [o.ref.key for o in src.list("b", "")] == ["k", "l"]
