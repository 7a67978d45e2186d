"""The HTML report: a tampered trail's timeline and problems, escaping, no network, bounded memory,
and what a person sees once Chromium has rendered it."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from datetime import datetime, timezone
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import run_memory
from validator.cli import main
from validator.model import ObjectMeta, ObjectRef, parse_key
from validator.report import html as H
from validator.results import INVALID, DigestRecord, LogRecord, Summary, Verdict
from validator.synth import generate
from validator.synth import tamper as T
from validator.synth.fixtures import TAMPERS
from validator.synth.trail import StoredObject

R1, R2 = "us-east-1", "eu-west-1"
SCRIPT = "<script>alert('pwned')</script>"


class Page(HTMLParser):
    """The parts of the report a test looks at: timeline cells by region, problem rows as text."""

    def __init__(self, text: str):
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}  # (region, hour) -> status
        self.rows: list[list[str]] = []
        self.scripts = 0
        self._region = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "div" and a.get("class") == "group":
            self._region = a.get("data-region")
        if "data-hour" in a:
            self.cells[(self._region, a["data-hour"])] = a.get("data-status", "none")
        if tag == "tr" and (a.get("id") or "").startswith("p"):
            self._row = []
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def hour_of(key: str) -> str:
    return parse_key(key).time.strftime("%Y-%m-%dT%H:00Z")


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """The demo fixture's tampering, under a key prefix that is a script (every key holds it), plus a stray
    object whose name is one; validated once with --report."""
    tmp = tmp_path_factory.mktemp("html")
    trail = generate(seed=42, prefix=SCRIPT)
    modified, deleted = T.log_at(trail, R1, 1).ref.key, T.log_at(trail, R2, 2).ref.key
    for t in TAMPERS:
        T.apply_named(trail, t)
    folder = f"{SCRIPT}/AWSLogs/{trail.spec.trail_account}/CloudTrail/{R1}/2026/11/02/"
    ref = ObjectRef(trail.spec.bucket, f"{folder}{SCRIPT}.json.gz")
    trail.objects[ref] = StoredObject(ObjectMeta(ref=ref, sse="AES256"), b"x")
    seal = trail.write_evidence(str(tmp / "ev"))
    report = tmp / "report.html"
    r = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", str(tmp / "ev"),
                                  "--manifest-sha256", seal, "--output", "json", "--report", str(report)],
                           catch_exceptions=False)
    records = [json.loads(line) for line in r.stdout.splitlines()]
    return {"exit": r.exit_code, "records": records, "html": report.read_text(), "path": report, "seal": seal,
            "trail": trail, "modified": modified, "deleted": deleted, "stray": ref.key, "tmp": tmp}


def test_tampered_hours_carry_their_status(tampered):
    assert tampered["exit"] == 1
    page = Page(tampered["html"])
    cells = page.cells
    assert cells[(R1, hour_of(tampered["modified"]))] == "invalid"  # modify-log: hash mismatch
    assert cells[(R2, hour_of(tampered["deleted"]))] == "missing"  # delete-log: not found
    assert cells[(R1, "2026-11-02T04:00Z")] == "invalid"  # inject-log: unreferenced
    assert cells[(R2, "2026-11-02T04:00Z")] == "invalid"  # modify-digest: signature mismatch
    assert cells[(R1, "2026-11-02T02:00Z")] == "missing"  # delete-digest
    assert cells[(R1, "2026-11-02T05:00Z")] == "warning"  # reencrypt-digest: not SSE-S3
    assert cells[(R1, "2026-11-02T00:00Z")] == cells[(R2, "2026-11-02T01:00Z")] == "valid"
    assert {r for r, _ in cells} == {R1, R2}
    # a problem cell links to its first problem row
    assert 'class="c s-invalid"' in tampered["html"] and 'href="#p' in tampered["html"]


def test_every_problem_is_listed_with_its_reason(tampered):
    problems = [r for r in tampered["records"] if r["kind"] in ("digest", "log", "object")
                and r["status"] not in ("valid", "pending")]
    rows = Page(tampered["html"]).rows
    assert len(rows) == len(problems) >= 11
    listed = {(row[1], row[2], row[6]) for row in rows}  # status, reason, object
    for p in problems:
        assert (p["status"], p["reason"], f"s3://{p['bucket']}/{p['key']}") in listed, p
    messages = {row[7] for row in rows}
    assert "hash value doesn't match" in messages and "signature verification failed" in messages


def test_parameters_trust_and_version_are_shown(tampered):
    text = tampered["html"]
    trail = tampered["trail"]
    from importlib.metadata import version
    for needle in (trail.arn, f"evidence directory {tampered['tmp'] / 'ev'}", tampered["seal"],
                   "matches --manifest-sha256", f"ctvalidate {version('ctvalidate')}", "report generated",
                   "Integrity failure", "exit code 1", "Backfill horizon", "24h"):
        assert escape(needle) in text, needle
    fingerprints = {r["fingerprint"] for r in tampered["records"] if r.get("fingerprint")}
    assert fingerprints and all(fp in text for fp in fingerprints)


def test_the_page_is_self_contained_and_the_script_key_is_inert(tampered):
    text = tampered["html"]
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered and "<link" not in lowered and " src=" not in lowered and "url(" not in lowered
    assert "@import" not in lowered and "@font-face" not in lowered
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;" in text  # shown, as text
    rows = Page(text).rows
    assert rows and all(row[6].startswith(f"s3://{tampered['trail'].spec.bucket}/{SCRIPT}/AWSLogs/") for row in rows)
    assert "script-src" not in text and "default-src 'none'" in text  # the page's own policy forbids scripts
    assert Page(text).scripts == 0
    assert not list(tampered["path"].parent.glob(".*.tmp"))


def report_of(records, summary, path: Path, header: dict | None = None) -> str:
    rep = H.HtmlReporter(path, {"Trail ARN": "arn:aws:cloudtrail:us-east-1:111122223333:trail/t"})
    rep.start(header or {"trail_arn": "t", "start_time": None, "end_time": "2026-12-01T00:00:00Z"})
    for r in records:
        rep.record(r)
    rep.finish(summary)
    return path.read_text()


def test_gaps_and_collapsed_days(tmp_path):
    trail = generate(hours=24 * 6, stops=((30, 34),), regions=(R1,), rotate_at_hour=None, logs_per_hour=(1, 1),
                     events_per_log=(1, 1))
    run = run_memory(trail)
    assert run.gaps and run.exit_code == 0
    page = report_of(run.records, run.summary, tmp_path / "r.html")
    cells = Page(page).cells
    assert cells[(R1, "2026-11-03T07:00Z")] == "gap" and cells[(R1, "2026-11-03T05:00Z")] == "valid"
    assert "days: every hour verified" in page  # uniform days in the middle collapse into one line
    assert "Intact: every digest and log file in range verified" in page and "1 gap(s)" in page


def test_problems_are_capped_and_cells_stay_one_per_hour(tmp_path, monkeypatch):
    monkeypatch.setattr(H, "MAX_PROBLEMS", 50)
    rep = H.HtmlReporter(tmp_path / "r.html", {})
    rep.start({"trail_arn": "t", "start_time": None, "end_time": "2026-11-03T00:00:00Z"})
    key = ("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/"
           "111122223333_CloudTrail_us-east-1_20261102T0{}Z_x.json.gz")
    for i in range(5000):
        rep.record(LogRecord("b", key.format(f"{i % 3}15"), Verdict(INVALID, "hash_mismatch", "m" * 10_000),
                             region="us-east-1", account_id="111122223333"))
    assert len(rep.problems) == 50 and sum(rep.more_problems.values()) == 4950
    assert sum(len(c) for c in rep.cells.values()) == 3  # one int per hour, however many files
    assert all(len(p[-1]) <= H.MAX_MESSAGE + 1 for p in rep.problems)
    rep.finish(Summary(requested_start=None, requested_end=datetime(2026, 11, 3, tzinfo=timezone.utc)))
    page = (tmp_path / "r.html").read_text()
    assert "4,950 more problem(s) not listed" in page


def test_absurd_digest_spans_do_not_blow_up_the_timeline(tmp_path):
    rep = H.HtmlReporter(tmp_path / "r.html", {})
    rep.start({"trail_arn": "t", "start_time": None, "end_time": "2200-01-01T00:00:00Z"})
    rep.record(DigestRecord("b", "AWSLogs/1/x.json.gz", "us-east-1", "111122223333", Verdict(INVALID, "invalid_format"),
                            start_time=datetime(1970, 1, 1, tzinfo=timezone.utc),
                            end_time=datetime(2199, 1, 1, tzinfo=timezone.utc)))
    assert sum(len(c) for c in rep.cells.values()) <= H.MAX_DIGEST_SPAN + 1


def test_an_interrupted_run_still_writes_the_report(tmp_path, monkeypatch):
    from validator.app import ValidateRequest, run_validate
    from validator.model import TrailArn
    from validator.pipeline import Validation
    from validator.policy import RunConfig
    trail = generate()
    trail.write_evidence(str(tmp_path / "ev"))
    original = Validation.records

    def records(self):
        for i, r in enumerate(original(self)):
            if i == 5:
                raise KeyboardInterrupt
            yield r

    monkeypatch.setattr(Validation, "records", records)
    out, err = io.StringIO(), io.StringIO()
    report = tmp_path / "r.html"
    request = ValidateRequest(config=RunConfig(trail=TrailArn.parse(trail.arn)), source_dir=str(tmp_path / "ev"),
                              report=str(report))
    code = run_validate(request, out, err)
    assert code == 130
    assert "Interrupted: the results below are partial" in report.read_text()


def test_a_report_path_that_cannot_be_written_is_a_usage_error(tmp_path):
    trail = generate()
    trail.write_evidence(str(tmp_path / "ev"))
    r = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", str(tmp_path / "ev"),
                                  "--report", str(tmp_path / "no" / "such" / "dir" / "r.html")])
    assert r.exit_code == 2 and "--report" in r.output


# --- what a person sees ------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={tmp / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=90)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_chromium_renders_the_timeline_and_the_problems(tampered):
    tmp, url = tampered["tmp"], tampered["path"].resolve().as_uri()
    dom = chromium(tmp, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Page(dom.stdout)
    assert len(page.rows) == len(Page(tampered["html"]).rows) >= 11
    assert page.cells == Page(tampered["html"]).cells  # every hour as rendered, tampered ones included
    assert page.cells[(R1, hour_of(tampered["modified"]))] == "invalid"
    assert page.cells[(R2, hour_of(tampered["deleted"]))] == "missing"
    rendered = {(row[1], row[2], row[6]) for row in page.rows}
    for p in tampered["records"]:  # each problem is listed in what the browser shows
        if p["kind"] in ("digest", "log", "object") and p["status"] not in ("valid", "pending") and p["key"]:
            assert (p["status"], p["reason"], f"s3://{p['bucket']}/{p['key']}") in rendered, p
    assert page.cells[(R1, "2026-11-02T02:00Z")] == "missing" and page.cells[(R2, "2026-11-02T04:00Z")] == "invalid"
    assert page.scripts == 0 and "<script" not in dom.stdout.lower()  # the key stayed text in the live DOM
    assert all(SCRIPT in row[6] for row in page.rows)

    png = tmp / "report.png"
    shot = chromium(tmp, f"--screenshot={png}", "--window-size=1400,1000", url)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    assert len(data) > 10_000  # a rendered page, not a blank one
    colors = png_colors(data)  # what a person sees: the invalid and missing hours in their colours
    assert colors[(0xD9, 0x30, 0x25)] >= 34 * 20 and colors[(0x8E, 0x24, 0xAA)] >= 34 * 20  # a cell each at least
    assert colors[(0x2E, 0x9D, 0x57)] >= 4 * 34 * 20  # and the verified hours around them


def png_colors(data: bytes) -> "Counter[tuple[int, int, int]]":
    """Pixel colours of an 8-bit RGB or RGBA PNG (what Chromium writes), with no imaging library."""
    import zlib
    from collections import Counter
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw, bpp = zlib.decompress(idat), 3 if ctype == 2 else 4
    stride, prev, counts = width * bpp, bytearray(width * bpp), Counter()
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        counts.update(zip(line[0::bpp], line[1::bpp], line[2::bpp]))
        prev = line
    return counts


def test_an_incremental_run_reports_the_same_timeline_and_problems(tampered, tmp_path):
    """--state: the second run fetches nothing unchanged, and its report still shows every tampered hour and
    every problem, with the state's hash among the trust anchors."""
    ev, state = str(tampered["tmp"] / "ev"), str(tmp_path / "s.db")
    pages, lines = [], []
    for n in (1, 2):
        report = tmp_path / f"r{n}.html"
        r = CliRunner().invoke(main, ["validate", "--trail-arn", tampered["trail"].arn, "--source", ev, "--output",
                                      "json", "--state", state, "--report", str(report)], catch_exceptions=False)
        assert r.exit_code == 1
        pages.append(report.read_text())
        lines.append([json.loads(x) for x in r.stdout.splitlines()])
    first, second = Page(pages[0]), Page(pages[1])
    assert second.cells == first.cells == Page(tampered["html"]).cells
    assert sorted(second.rows, key=lambda r: r[6]) and {(r[1], r[2], r[6]) for r in second.rows} == \
        {(r[1], r[2], r[6]) for r in Page(tampered["html"]).rows}
    summary = lines[1][-1]
    assert summary["from_state"]["digests"] > 0 and summary["from_state"]["logs"] > 0
    assert summary["trust"]["state_sha256"] in pages[1] and "not anchored" in pages[1]
    assert f"{summary['from_state']['digests']:,} digest(s)" in pages[1]
