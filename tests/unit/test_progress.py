"""The progress line: silent unless stderr is a terminal, at most five redraws a second, erased at the end,
never on stdout, and out of the way of other lines written to the same terminal."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner

from validator.app import ValidateRequest, run_validate
from validator.cli import main
from validator.model import TrailArn
from validator.policy import RunConfig
from validator.report.progress import Progress
from validator.results import DigestRecord, LogRecord, Verdict
from validator.synth import generate


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def screen(text: str) -> list[str]:
    """What a terminal shows after `text`: \\r rewinds the row, \\n starts a new one."""
    rows, col = [[]], 0
    for ch in text:
        if ch == "\r":
            col = 0
        elif ch == "\n":
            rows.append([])
            col = 0
        else:
            row = rows[-1]
            row.extend(" " * (col + 1 - len(row)))
            row[col] = ch
            col += 1
    return ["".join(r).rstrip() for r in rows]


def digest() -> DigestRecord:
    return DigestRecord("b", "k", "us-east-1", "111122223333", Verdict.valid())


def log() -> LogRecord:
    return LogRecord("b", "k", Verdict.valid())


def test_silent_when_stderr_is_not_a_terminal():
    err = io.StringIO()
    p = Progress(err, ticker=False)
    p.start({})
    for _ in range(100):
        p.record(log())
    p.finish(None)
    assert err.getvalue() == "" and not p.enabled
    assert p.guard(err) is err
    source = object()
    assert p.watch(source) is source


def test_draws_on_a_terminal_and_erases_itself():
    err, clock = Tty(), Clock()
    p = Progress(err, clock=clock, ticker=False, width=120)
    p.start({})
    assert err.getvalue().startswith("\rctvalidate: 0 digests, 0 log files checked")
    p.record(digest())
    for _ in range(40):
        p.record(log())
    clock.t += 2.0
    p.record(log())
    assert screen(err.getvalue())[-1].startswith("ctvalidate: 1 digests, 41 log files checked \u00b7 21 files/s")
    assert "0:02" in screen(err.getvalue())[-1]
    p.finish(None)
    assert "\n" not in err.getvalue()  # one row, rewritten in place
    assert screen(err.getvalue()) == [""]  # nothing left on the row


def test_at_most_five_redraws_a_second():
    err, clock = Tty(), Clock()
    p = Progress(err, clock=clock, ticker=False, width=120)
    p.start({})
    for _ in range(1000):  # a record every millisecond for one second
        clock.t += 0.001
        p.record(log())
    assert err.getvalue().count("\r") <= 6


def test_a_line_written_meanwhile_erases_the_progress_first():
    err, clock = Tty(), Clock()
    p = Progress(err, clock=clock, ticker=False, width=120)
    guarded = p.guard(err)
    p.start({})
    guarded.write("Log file\ts3://b/k\tINVALID: hash value doesn't match\n")
    p.finish(None)
    assert screen(err.getvalue()) == ["Log file\ts3://b/k\tINVALID: hash value doesn't match", ""]


def test_long_lines_are_cut_to_the_terminal_width():
    err = Tty()
    p = Progress(err, clock=Clock(), ticker=False, width=30)
    p.start({})
    p.finish(None)
    assert max(len(row) for row in screen(err.getvalue().replace("\r" + " " * 29 + "\r", "\r"))) <= 29


def test_bytes_read_are_counted_through_the_source():
    class Stream:
        meta = "meta"

        def chunks(self):
            yield b"a" * 1000
            yield b"b" * 24

        def close(self):
            pass

    class Source:
        manifest_sha256 = "seal"

        def open(self, ref):
            return Stream()

    err = Tty()
    p = Progress(err, clock=Clock(), ticker=False, width=200)
    source = p.watch(Source())
    with source.open("ref") as s:
        assert s.meta == "meta" and sum(len(c) for c in s.chunks()) == 1024
    assert p.bytes_read == 1024 and source.manifest_sha256 == "seal"
    p.start({})
    assert "1.0 KiB read" in err.getvalue()


def _run(tmp_path, err, progress=True):
    trail = generate()
    if not (tmp_path / "ev").exists():
        trail.write_evidence(str(tmp_path / "ev"))
    out = io.StringIO()
    code = run_validate(ValidateRequest(config=RunConfig(trail=TrailArn.parse(trail.arn)),
                                        source_dir=str(tmp_path / "ev"), output="json", progress=progress), out, err)
    return code, out.getvalue()


def test_a_run_on_a_terminal_shows_progress_on_stderr_only(tmp_path):
    err = Tty()
    code, out = _run(tmp_path, err)
    assert code == 0
    assert all(json.loads(line)["kind"] for line in out.splitlines())  # stdout: JSON Lines, nothing else
    assert "ctvalidate: " in err.getvalue() and "read" in err.getvalue()
    assert screen(err.getvalue()) == [""]


def test_a_run_without_a_terminal_or_with_no_progress_is_silent(tmp_path):
    err = io.StringIO()
    assert _run(tmp_path, err)[0] == 0 and err.getvalue() == ""
    err = Tty()
    assert _run(tmp_path, err, progress=False)[0] == 0 and err.getvalue() == ""


def test_the_no_progress_flag(tmp_path):
    trail = generate()
    trail.write_evidence(str(tmp_path / "ev"))
    r = CliRunner().invoke(main, ["validate", "--trail-arn", trail.arn, "--source", str(tmp_path / "ev"),
                                  "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "--no-progress" in CliRunner().invoke(main, ["validate", "--help"]).output
