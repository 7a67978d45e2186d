"""One self-contained HTML report: an hour-by-hour timeline per account and region, the totals,
every problem, the run's parameters and trust anchor.

The page loads nothing: inline CSS, no script, no fonts or images, and a Content-Security-Policy
that forbids scripts and every network fetch. Keys and messages come from the bucket, so they are
attacker-controlled: everything is escaped, and the policy keeps the page inert even if it were not.

Memory stays bounded however long the history: records are folded as they stream in into one
small integer per (account, region, hour) (worst status, files, problems), and at most
MAX_PROBLEMS problems and MAX_GAPS gaps are kept (the rest are counted).
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError
from ..model import format_time, parse_key
from ..policy import RunConfig
from ..results import (INVALID, MISSING, PENDING, UNVERIFIABLE, VALID, WARNING, DigestRecord, GapRecord, LogRecord,
                       Record, Summary)
from .text import explanation_text

UTC = timezone.utc
HOUR = 3600
GAP = "gap"
NONE = "none"

#: worst first; a cell shows the worst status of anything in its hour
CELL_ORDER = (INVALID, MISSING, UNVERIFIABLE, WARNING, GAP, PENDING, VALID)
_RANK = {s: i for i, s in enumerate(CELL_ORDER)}
LABEL = {VALID: "verified", PENDING: "pending", GAP: "gap (no digest)", WARNING: "warning",
         UNVERIFIABLE: "unverifiable", MISSING: "missing", INVALID: "invalid", NONE: "no data"}
GLYPH = {VALID: "", PENDING: "\u2026", GAP: "\u2013", WARNING: "!", UNVERIFIABLE: "?", MISSING: "\u2205",
         INVALID: "\u2715", NONE: ""}

MAX_PROBLEMS = 10_000
MAX_GAPS = 10_000
MAX_CELLS = 2_000_000  # about 100 MB at worst; 3 years of hours in 75 regions
MAX_FINGERPRINTS = 1_000
MAX_MESSAGE = 2_000
MAX_DIGEST_SPAN = 48  # hours: one digest covers about one; a longer claimed span is not believed
MIN_OVERLAP = 300  # seconds of a span that put it in an hour (a digest ending at 01:00:29 is hour 00's)
MAX_LINKED_HOURS = 24 * 31  # cells of one long span that link to its problem row
COLLAPSE_DAYS = 3  # this many uniform days in a row become one line

# a cell is one int: rank | files << 3 | problems << 34
_FILES, _PROBLEMS = 3, 34
_ONE_FILE, _ONE_PROBLEM = 1 << _FILES, 1 << _PROBLEMS
_MASK = (1 << 31) - 1


def _status_of(cell: int) -> str:
    return CELL_ORDER[cell & 7]


def _merge(cell: int | None, rank: int, files: int, problems: int) -> int:
    if cell is None:
        return rank | files << _FILES | problems << _PROBLEMS
    return min(cell & 7, rank) | ((cell >> _FILES & _MASK) + files) << _FILES | \
        ((cell >> _PROBLEMS) + problems) << _PROBLEMS


class ReportError(Exception):
    """The report file could not be written."""


class HtmlReporter:
    """Writes `path` at `finish`: start/record/finish like the other reporters, fed beside them."""

    def __init__(self, path: str | os.PathLike[str], parameters: dict[str, Any]):
        self.path = Path(path)
        parent = self.path.parent
        if self.path.is_dir():
            raise ConfigError(f"--report {path}: is a directory")
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(f"--report {path}: cannot write in {parent}")
        self.parameters = dict(parameters)
        self.header: dict[str, Any] = {}
        self._window_start: int | None = None
        self._window_end: int | None = None
        self.cells: dict[tuple[str, str], dict[int, int]] = {}
        self._n_cells = 0
        self.cells_dropped = False
        self.problems: list[tuple] = []
        self.more_problems: Counter = Counter()
        self.gaps: list[GapRecord] = []
        self.more_gaps = 0
        self.fingerprints: dict[str, list] = {}  # fingerprint -> [digests, set of regions]
        self.histories: list[tuple[str, str, str, str, dict | None, list]] = []  # altered objects of the bucket
        self.more_histories = 0
        self.error: str | None = None

    # --- the reporter protocol -----------------------------------------------------------------

    def start(self, header: dict) -> None:
        self.header = dict(header)
        self._window_start = _hour_of_text(header.get("start_time"))
        self._window_end = _hour_of_text(header.get("end_time"))

    def record(self, r: Record) -> None:
        if isinstance(r, GapRecord):
            self._gap(r)
            return
        status, problem = r.verdict.status, r.verdict.status not in (VALID, PENDING)
        account, region, hours = self._place(r)
        rank = _RANK[status]
        if problem:
            self._problem(r, account, region, hours)
        for h in hours:
            self._cell(account, region, h, rank, 1, 1 if problem else 0)
        extra = getattr(r, "extra", None)
        if extra and any(k in extra for k in ("versions", "deleted", "rewritten")):
            self._history(r, extra)
        if isinstance(r, DigestRecord) and r.fingerprint:
            seen = self.fingerprints.get(r.fingerprint)
            if seen is None and len(self.fingerprints) < MAX_FINGERPRINTS:
                seen = self.fingerprints[r.fingerprint] = [0, set()]
            if seen is not None:
                seen[0] += 1
                seen[1].add(r.region)

    def finish(self, summary: Summary, error: str | None = None) -> None:
        """Write the page (through a temporary name, so a reader never sees half of it)."""
        self.error = error
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                for chunk in self._page(summary):
                    f.write(chunk)
            os.replace(tmp, self.path)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise ReportError(f"cannot write the report {self.path}: {exc.strerror or exc}") from None

    # --- folding records ---------------------------------------------------------------------

    def _place(self, r: Record) -> tuple[str, str, list[int]]:
        """The account, region and hours (epoch hours) a record speaks for."""
        if r.kind == "object":  # a stray object in the trail's folders
            name = parse_key(r.key)
            return (name.account_id, name.region, [_hour(name.time)]) if name else ("", "", [])
        if isinstance(r, LogRecord):
            name = parse_key(r.key)
            account = r.account_id or (name.account_id if name else "")
            region = r.region or (name.region if name else "")
            return account, region, [_hour(name.time)] if name else []
        assert isinstance(r, DigestRecord)
        start, end = r.start_time, r.end_time
        if r.key is not None:
            if end is None or start is None:
                name = parse_key(r.key)  # its end time, as its name claims: the hour before it
                return r.account_id, r.region, [_hour(name.time - timedelta(minutes=30))] if name else []
            start = max(start, end - timedelta(hours=MAX_DIGEST_SPAN))
        elif start is None or end is None:
            return r.account_id, r.region, []
        return r.account_id, r.region, self._span_hours(start, end)

    def _span_hours(self, start: datetime, end: datetime) -> list[int]:
        s, e = start.timestamp(), end.timestamp()
        lo, hi = int(s // HOUR), int(e // HOUR)
        if self._window_start is not None:
            lo = max(lo, self._window_start)
        if self._window_end is not None:
            hi = min(hi, self._window_end)
        hours = [h for h in range(lo, hi + 1) if min(e, (h + 1) * HOUR) - max(s, h * HOUR) >= MIN_OVERLAP]
        if not hours and lo <= hi:
            hours = [max(lo, min(hi, int(s // HOUR)))]
        return hours

    def _cell(self, account: str, region: str, hour: int, rank: int, files: int, problems: int) -> None:
        group = self.cells.setdefault((account, region), {})
        old = group.get(hour)
        if old is None:
            if self._n_cells >= MAX_CELLS:
                self.cells_dropped = True
                return
            self._n_cells += 1
        group[hour] = _merge(old, rank, files, problems)

    def _problem(self, r: Record, account: str, region: str, hours: list[int]) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.more_problems[r.verdict.status] += 1
            return
        if r.key is not None:
            where = f"s3://{r.bucket}/{r.key}"
        else:
            assert isinstance(r, DigestRecord)
            span = (f"{format_time(r.start_time) or '?'} \u2192 {format_time(r.end_time) or '?'}"
                    if r.start_time or r.end_time else "no span")
            where = f"(key unknown) {r.account_id or '-'} {r.region or 'all regions'}, {span}"
        first, last = (hours[0], hours[-1]) if hours else (None, None)
        self.problems.append((r.kind, r.verdict.status, r.verdict.reason or "", where, account, region, first, last,
                              _cap(r.verdict.message or "")))

    def _history(self, r: Record, extra: dict) -> None:
        if len(self.histories) >= MAX_PROBLEMS:
            self.more_histories += 1
            return
        versions = [(str(x.get("version_id")), x.get("last_modified") or "", bool(x.get("is_latest")),
                     bool(x.get("delete_marker")), x.get("status"), x.get("reason"))
                    for x in (extra.get("versions") or [])[:100] if isinstance(x, dict)]
        deleted = extra.get("deleted") if isinstance(extra.get("deleted"), dict) else None
        self.histories.append((r.kind, f"s3://{r.bucket}/{r.key}", r.verdict.status, r.verdict.reason or "",
                               deleted, versions))

    def _gap(self, g: GapRecord) -> None:
        for h in self._span_hours(g.start_time, g.end_time):
            self._cell(g.account_id, g.region, h, _RANK[GAP], 0, 0)
        if len(self.gaps) < MAX_GAPS:
            self.gaps.append(g)
        else:
            self.more_gaps += 1

    # --- the page -----------------------------------------------------------------------------

    def _page(self, s: Summary) -> Iterator[str]:
        trail = self.parameters.get("Trail ARN") or self.header.get("trail_arn") or ""
        yield ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'\">\n"
               "<meta name=\"referrer\" content=\"no-referrer\">\n"
               f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               f"<title>ctvalidate report \u2013 {escape(str(trail))}</title>\n<style>{CSS}</style></head>\n<body>\n")
        yield from self._banner(s, str(trail))
        yield from self._totals(s)
        yield from self._timeline()
        yield from self._problem_table()
        yield from self._gap_table()
        yield from self._history_table()
        yield from self._run(s)
        yield "</body></html>\n"

    def _banner(self, s: Summary, trail: str) -> Iterator[str]:
        code = s.exit_code
        if self.error:
            cls, title = "b-error", "Validation stopped by an error: no verdict"
        elif code == 130:
            cls, title = "b-partial", "Interrupted: the results below are partial"
        elif code == 1:
            cls, title = "b-fail", "Integrity failure: files are invalid or missing"
        elif code == 3:
            cls, title = "b-warn", "No integrity failure, but the result is incomplete or anomalous"
        else:
            cls, title = "b-ok", "Intact: every digest and log file in range verified"
        window = (f"{self.parameters.get('Window start') or self.header.get('start_time') or 'the oldest digest'}"
                  f" \u2192 {self.parameters.get('Window end') or self.header.get('end_time') or 'now'}")
        yield (f"<header class=\"banner {cls}\"><div class=\"verdict\">{escape(title)}</div>"
               f"<div class=\"exit\">exit code {code if not self.error else 2}</div>"
               f"<h1>CloudTrail validation report</h1><div class=\"sub\"><span class=\"mono\">{escape(trail)}</span>"
               f" &middot; {escape(window)}</div>")
        if self.error:
            yield f"<div class=\"error\">{escape(self.error)}</div>"
        yield "</header>\n"

    def _totals(self, s: Summary) -> Iterator[str]:
        rows = [("Digest files", s.digests), ("Log files", s.logs)]
        if getattr(s, "objects", None):
            rows.append(("Stray objects", s.objects))
        order = (VALID, INVALID, MISSING, UNVERIFIABLE, WARNING, PENDING)
        yield "<section><h2>Totals</h2><table class=\"totals\"><thead><tr><th></th>"
        for st in order:
            yield f"<th><span class=\"chip s-{st}\">{GLYPH[st]}</span> {escape(LABEL[st])}</th>"
        yield "<th>total</th></tr></thead><tbody>"
        for name, counts in rows:
            yield f"<tr><th>{name}</th>"
            for st in order:
                n = counts.get(st, 0)
                yield f"<td class=\"{'z' if not n else 'n-' + st}\">{n:,}</td>"
            yield f"<td class=\"t\">{sum(counts.values()):,}</td></tr>"
        yield "</tbody></table>"
        explained = sum(1 for g in self.gaps if g.explained_by)
        unexplained = len(self.gaps) - explained
        gap_text = f"{s.gaps:,} gap(s) in the digest chain"
        if s.gaps:
            gap_text += f" ({explained:,} explained by a logged event, {unexplained + self.more_gaps:,} unexplained"
            gap_text += "; failing the run with --require-explained-gaps)" if s.failing_gaps else ")"
        yield f"<p class=\"gaps\">{escape(gap_text)}</p>"
        kept = getattr(s, "from_state", None)
        if kept or self.parameters.get("State file"):
            d, n = kept.get("digest", 0) if kept else 0, kept.get("log", 0) if kept else 0
            yield (f"<p class=\"note\">--state: {d:,} digest(s) and {n:,} log file(s) unchanged since the state "
                   "recorded them verified were judged from it without a GET; everything else was fetched.</p>")
        yield "</section>\n"

    def _legend(self) -> str:
        items = "".join(f"<span class=\"lg\"><span class=\"chip s-{st}\">{GLYPH[st]}</span>{escape(LABEL[st])}</span>"
                        for st in (VALID, PENDING, GAP, WARNING, UNVERIFIABLE, MISSING, INVALID, NONE))
        return f"<div class=\"legend\">{items}</div>"

    def _timeline(self) -> Iterator[str]:
        yield ("<section><h2>Timeline</h2><p class=\"note\">One cell per hour (UTC), for each account and region: "
               "the worst status of any digest, log file or gap in that hour. Hover a cell for its counts; "
               "a cell with problems links to the first of them.</p>")
        yield self._legend()
        groups = {k: v for k, v in self.cells.items() if v}
        if not groups:
            yield "<p class=\"note\">No hours to show: no digest or log file with a known time.</p></section>\n"
            return
        lo = min(min(g) for g in groups.values())
        hi = max(max(g) for g in groups.values())
        first_problem = {}
        self._sort_problems()
        for i, (_, _, _, _, account, region, first, last, _) in enumerate(self.problems):
            if first is not None:
                for h in range(first, min(last, first + MAX_LINKED_HOURS) + 1):
                    first_problem.setdefault((account, region, h), i)
        head = "".join(f"<span class=\"hh\">{h:02d}</span>" for h in range(24))
        for (account, region), cells in sorted(groups.items()):
            n_problems = sum(c >> _PROBLEMS for c in cells.values())
            counts = Counter(_status_of(c) for c in cells.values())
            summary = ", ".join(f"{counts[st]} {LABEL[st]}" for st in CELL_ORDER if counts[st])
            yield (f"<div class=\"group\" data-account=\"{escape(account)}\" data-region=\"{escape(region)}\">"
                   f"<h3><span class=\"mono\">{escape(region or 'all regions')}</span> "
                   f"<span class=\"acct\">account {escape(account or '-')}</span>"
                   f"<span class=\"gsum\">{n_problems:,} problem(s) &middot; hours: {escape(summary)}</span></h3>"
                   f"<div class=\"grid\"><div class=\"row head\"><span class=\"day\">UTC day</span>{head}</div>\n")
            yield from self._days(account, region, cells, lo, hi, first_problem)
            yield "</div></div>\n"
        if self.cells_dropped:
            yield (f"<p class=\"note warn\">The timeline holds at most {MAX_CELLS:,} hours; later hours were left "
                   "out of it (every problem is still listed below).</p>")
        yield "</section>\n"

    def _days(self, account: str, region: str, cells: dict[int, int], lo: int, hi: int,
              first_problem: dict) -> Iterator[str]:
        day0, day1 = lo // 24, hi // 24
        run: list[int] = []  # consecutive uniform days of one status
        run_status = None

        def flush() -> Iterator[str]:
            if not run:
                return
            if len(run) >= COLLAPSE_DAYS:
                text = f"{len(run)} days: every hour {LABEL[run_status]}"
                yield (f"<div class=\"row\"><span class=\"day\">{_day(run[0])} \u2192<br>{_day(run[-1])}</span>"
                       f"<span class=\"span s-{run_status}\" title=\"{escape(text)}\">{escape(text)}</span></div>\n")
            else:
                for d in run:
                    yield self._day_row(account, region, cells, d, lo, hi, first_problem)
            run.clear()

        for d in range(day0, day1 + 1):
            statuses = {_status_of(cells[h]) if h in cells else NONE for h in range(d * 24, d * 24 + 24)
                        if lo <= h <= hi}
            uniform = statuses.pop() if len(statuses) == 1 else None
            if uniform is not None and uniform in (VALID, NONE, GAP, PENDING) and d not in (day0, day1):
                if run and run_status != uniform:
                    yield from flush()
                run.append(d)
                run_status = uniform
                continue
            yield from flush()
            yield self._day_row(account, region, cells, d, lo, hi, first_problem)
        yield from flush()

    def _day_row(self, account: str, region: str, cells: dict[int, int], d: int, lo: int, hi: int,
                 first_problem: dict) -> str:
        out = [f"<div class=\"row\"><span class=\"day\">{_day(d)}</span>"]
        for h in range(d * 24, d * 24 + 24):
            if not lo <= h <= hi:
                out.append("<span class=\"c out\"></span>")
                continue
            cell = cells.get(h)
            when = _hour_text(h)
            if cell is None:
                out.append(f"<span class=\"c s-none\" data-hour=\"{when}\" title=\"{when} {escape(region)}: "
                           "no digest or log file\"></span>")
                continue
            st = _status_of(cell)
            files, problems = cell >> _FILES & _MASK, cell >> _PROBLEMS
            title = f"{when} {region} {account}: {LABEL[st]} \u00b7 {files} file(s), {problems} problem(s)"
            attrs = f"class=\"c s-{st}\" data-hour=\"{when}\" data-status=\"{st}\" title=\"{escape(title)}\""
            target = first_problem.get((account, region, h))
            if target is not None:
                out.append(f"<a {attrs} href=\"#p{target + 1}\">{GLYPH[st]}</a>")
            else:
                out.append(f"<span {attrs}>{GLYPH[st]}</span>")
        out.append("</div>\n")
        return "".join(out)

    def _sort_problems(self) -> None:
        """By account, region and hour (spans with no hour last), the worst first within an hour."""
        never = 1 << 62
        self.problems.sort(key=lambda p: (p[4], p[5], never if p[6] is None else p[6], _RANK.get(p[1], 9)))

    def _problem_table(self) -> Iterator[str]:
        total = len(self.problems) + sum(self.more_problems.values())
        yield f"<section><h2>Problems <span class=\"count\">{total:,}</span></h2>"
        if not total:
            yield "<p class=\"note\">None: no file is invalid, missing, unverifiable or a warning.</p></section>\n"
            return
        yield ("<p class=\"note\">Every digest, log file and object that is not valid (pending files, whose "
               "digest is not written yet, are not problems). Objects and messages are shown as found: they "
               "may be an attacker's text.</p>")
        yield ("<table class=\"problems\"><thead><tr><th>#</th><th>status</th><th>reason</th><th>kind</th>"
               "<th>hour (UTC)</th><th>region / account</th><th>object</th><th>message</th></tr></thead><tbody>\n")
        for i, (kind, status, reason, where, account, region, first, last, message) in enumerate(self.problems, 1):
            when = "" if first is None else _hour_label(first) if first == last else \
                f"{_hour_label(first)} \u2192<br>{_hour_label(last)}"
            yield (f"<tr id=\"p{i}\" class=\"problem r-{status}\"><td class=\"num\">{i}</td>"
                   f"<td><span class=\"badge s-{status}\">{escape(status)}</span></td>"
                   f"<td class=\"mono\">{escape(reason)}</td><td>{escape(kind)}</td><td class=\"mono when\">{when}</td>"
                   f"<td class=\"mono\">{escape(region or '-')}<br>{escape(account or '-')}</td>"
                   f"<td class=\"obj mono\">{_object_html(where)}</td><td class=\"msg\">{escape(message)}</td></tr>\n")
        yield "</tbody></table>"
        if self.more_problems:
            more = sum(self.more_problems.values())
            detail = ", ".join(f"{n:,} {st}" for st, n in sorted(self.more_problems.items()))
            yield (f"<p class=\"more\">{more:,} more problem(s) not listed ({escape(detail)}): the report lists "
                   f"the first {MAX_PROBLEMS:,}; run with --output json for all of them.</p>")
        yield "</section>\n"

    def _gap_table(self) -> Iterator[str]:
        if not self.gaps:
            return
        yield (f"<section><h2>Gaps <span class=\"count\">{len(self.gaps) + self.more_gaps:,}</span></h2>"
               "<p class=\"note\">Spans between two chains where no digest was delivered (logging stopped and "
               "restarted), with the event that explains each, if any.</p>"
               "<table class=\"problems\"><thead><tr><th>region / account</th><th>from</th><th>to</th>"
               "<th>explained by</th></tr></thead><tbody>\n")
        for g in self.gaps:
            e = g.explained_by
            if e:
                why, cls = explanation_text(e), ""
            else:
                why, cls = "unexplained: no StopLogging, DeleteTrail or UpdateTrail event found", " class=\"warn\""
            yield (f"<tr><td class=\"mono\">{escape(g.region)}<br>{escape(g.account_id)}</td>"
                   f"<td class=\"mono\">{format_time(g.start_time)}</td>"
                   f"<td class=\"mono\">{format_time(g.end_time)}</td>"
                   f"<td{cls}>{escape(_cap(str(why)))}</td></tr>\n")
        yield "</tbody></table>"
        if self.more_gaps:
            yield f"<p class=\"more\">{self.more_gaps:,} more gap(s) not listed.</p>"
        yield "</section>\n"

    def _history_table(self) -> Iterator[str]:
        if not self.histories:
            return
        yield (f"<section><h2>Object history <span class=\"count\">{len(self.histories) + self.more_histories:,}"
               "</span></h2><p class=\"note\">The bucket keeps versions: these objects were deleted (a delete "
               "marker on top) or written more than once. CloudTrail writes each object once. Each version is "
               "checked on its own; the current state decides the status.</p>"
               "<table class=\"problems history\"><thead><tr><th>object</th><th>status</th><th>deleted</th>"
               "<th>versions, newest first</th></tr></thead><tbody>\n")
        for kind, where, status, reason, deleted, versions in self.histories:
            rows = "".join(
                f"<tr><td class=\"mono\">{escape(vid)}</td><td class=\"mono\">{escape(str(when))}</td><td>"
                + ("delete marker" if marker else
                   f"<span class=\"badge s-{escape(str(st))}\">{escape(str(st))}</span> {escape(str(rs or ''))}"
                   if st else "not checked")
                + (" <b>current</b>" if latest else "") + "</td></tr>"
                for vid, when, latest, marker, st, rs in versions)
            gone = (f"{escape(str(deleted.get('at')))}<br><span class=\"mono\">marker "
                    f"{escape(str(deleted.get('version_id')))}</span>" if deleted else "-")
            yield (f"<tr class=\"r-{escape(status)}\"><td class=\"obj mono\">{escape(kind)}<br>{_object_html(where)}</td>"
                   f"<td><span class=\"badge s-{escape(status)}\">{escape(status)}</span><br>"
                   f"<span class=\"mono\">{escape(reason)}</span></td><td>{gone}</td>"
                   f"<td><table class=\"fp\"><tbody>{rows}</tbody></table></td></tr>\n")
        yield "</tbody></table>"
        if self.more_histories:
            yield f"<p class=\"more\">{self.more_histories:,} more altered object(s) not listed.</p>"
        yield "</section>\n"

    def _run(self, s: Summary) -> Iterator[str]:
        anchor = {"aws": "public keys from CloudTrail ListPublicKeys (AWS)",
                  "file": "public keys from --public-keys files (your trust anchor)",
                  "evidence": "public keys stored in the evidence directory: not a trust anchor on their own"}
        sealed = bool(s.manifest_sha256 and self.parameters.get("Seal checked"))
        if sealed:
            anchor["evidence"] = "public keys stored in the evidence directory, trusted through the seal you gave"
        trusted = s.public_keys in ("aws", "file") or sealed
        yield "<section class=\"cols\"><div><h2>Run</h2><table class=\"kv\"><tbody>"
        for k, v in self.parameters.items():
            if v is None or v is False or (not v and isinstance(v, (str, list, tuple, set, frozenset, dict))):
                continue
            yield f"<tr><th>{escape(str(k))}</th><td class=\"mono\">{escape(_text(v))}</td></tr>"
        yield "</tbody></table></div><div><h2>Trust</h2><table class=\"kv\"><tbody>"
        yield (f"<tr><th>Public keys</th><td{'' if trusted else ' class=warn'}>"
               f"{escape(anchor.get(s.public_keys, str(s.public_keys)))}</td></tr>")
        seal = s.manifest_sha256
        yield (f"<tr><th>Manifest seal (SHA-256)</th><td class=\"mono\">{escape(seal) if seal else '-'}"
               + (" <span class=\"ok\">(matches --manifest-sha256)</span>" if seal and
                  self.parameters.get("Seal checked") else "") + "</td></tr>")
        p = getattr(s, "protection", None)
        if p:
            from .text import protection_text
            locked = getattr(s, "history", {}).get("immutable", 0)
            yield (f"<tr><th>Bucket</th><td{'' if p.get('versioning') else ' class=warn'}>"
                   f"{escape(protection_text(p).removeprefix('Bucket: '))}"
                   + (f"; {locked:,} object(s) under COMPLIANCE retention: they cannot have been rewritten"
                      if locked else "") + "</td></tr>")
        if self.parameters.get("State file"):
            state = getattr(s, "state_sha256", None)
            anchored = self.parameters.get("State anchored")
            yield (f"<tr><th>State file (SHA-256)</th><td{'' if anchored else ' class=warn'}>"
                   f"<span class=\"mono\">{escape(state) if state else '-'}</span> "
                   + ("<span class=\"ok\">(the previous state matched --state-sha256)</span>" if anchored else
                      "(not anchored: give this hash to the next run as --state-sha256)") + "</td></tr>")
        yield "<tr><th>Key fingerprints seen</th><td>"
        if self.fingerprints:
            yield "<table class=\"fp\"><tbody>"
            for fp, (n, regions) in sorted(self.fingerprints.items()):
                yield (f"<tr><td class=\"mono\">{escape(fp)}</td><td>{n:,} digest(s)</td>"
                       f"<td class=\"mono\">{escape(', '.join(sorted(regions)))}</td></tr>")
            yield "</tbody></table>"
        else:
            yield "none"
        yield "</td></tr></tbody></table></div></section>\n"
        yield (f"<footer>ctvalidate {escape(_version())} &middot; report generated "
               f"{format_time(datetime.now(UTC))} &middot; self-contained: this page loads nothing from the "
               "network</footer>\n")


def run_parameters(config: RunConfig, *, window_end: datetime, source: str, **more: Any) -> dict[str, Any]:
    """The run's parameters as the report shows them (None and False values are left out)."""
    c = config
    params: dict[str, Any] = {
        "Trail ARN": str(c.trail),
        "Window start": format_time(c.start) or "the oldest digest found (default)",
        "Window end": format_time(window_end) + ("" if c.end else " (now, default)"),
        "Source": source,
        "Account": c.account_id,
        "Regions": sorted(c.regions) if c.regions else "every region found",
        "Expected regions": sorted(c.expect_regions),
        "Expected accounts": sorted(c.expect_accounts),
        "Copy of": c.copy_of,
        "Check write times": f"yes, tolerance {_duration(c.write_time_tolerance)}" if c.check_write_times else None,
        "Require explained gaps": c.require_explained_gaps or None,
        "Backfill horizon": _duration(c.backfill_horizon),
        "Extra log keys": sorted(c.extra_log_keys),
        "Workers": c.workers,
    }
    params.update(more)
    return params


# --- helpers ---------------------------------------------------------------------------------


def _hour(t: datetime) -> int:
    return int(t.timestamp() // HOUR)


def _hour_of_text(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return _hour(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
    except ValueError:
        return None


def _hour_text(h: int) -> str:
    return datetime.fromtimestamp(h * HOUR, UTC).strftime("%Y-%m-%dT%H:00Z")


def _hour_label(h: int) -> str:
    return datetime.fromtimestamp(h * HOUR, UTC).strftime("%Y-%m-%d %H:00")


def _object_html(where: str) -> str:
    """The object's URI, escaped, with its file name in bold (the part that tells files apart)."""
    head, sep, name = where.rpartition("/")
    if not where.startswith("s3://") or not sep or not name:
        return escape(where)
    return f"{escape(head + sep)}<b>{escape(name)}</b>"


def _day(d: int) -> str:
    return datetime.fromtimestamp(d * 86400, UTC).strftime("%Y-%m-%d")


def _duration(d: timedelta) -> str:
    """As the command line takes it: 24h, 90m, 45s."""
    s = int(d.total_seconds())
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % n == 0 and (unit != "d" or s // n > 1):
            return f"{s // n}{unit}"
    return f"{s}s"


def _cap(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "\u2026"


def _text(v: Any) -> str:
    if v is True:
        return "yes"
    if isinstance(v, (list, tuple, set, frozenset)):
        return ", ".join(str(x) for x in v)
    return str(v)


def _version() -> str:
    try:
        return metadata.version("ctvalidate")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


CSS = """
:root{--valid:#2e9d57;--pending:#a8c8ec;--warning:#f2a900;--unverifiable:#7d8ea0;--missing:#8e24aa;
--invalid:#d93025;--none:#f1f3f4;--ink:#1d2330;--muted:#5f6b7a;--line:#dfe3e8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:#f6f7f9}
section,footer{margin:18px 28px;background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px}
footer{background:none;border:none;color:var(--muted);font-size:12px;padding:4px 18px}
h1{font-size:15px;font-weight:600;margin:6px 0 2px;opacity:.9}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:14px 0 6px;display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
.banner{padding:18px 28px 16px;color:#fff}
.banner .verdict{font-size:24px;font-weight:700}
.banner .exit{float:right;font-size:13px;background:rgba(0,0,0,.18);border-radius:12px;padding:2px 10px;
margin-top:-30px}
.banner .sub{opacity:.95;word-break:break-all}
.banner .error{margin-top:8px;background:rgba(0,0,0,.2);padding:6px 10px;border-radius:6px}
.b-ok{background:#1e7e45}.b-fail{background:#b3261e}.b-warn{background:#a56a00}
.b-partial,.b-error{background:#4a5568}
.note{color:var(--muted);margin:0 0 10px;font-size:13px}
.note.warn,td.warn,.warn{color:#8a4b00}
.ok{color:#1e7e45}
.count{background:var(--ink);color:#fff;border-radius:10px;padding:0 8px;font-size:13px;vertical-align:2px}
table{border-collapse:collapse}
.totals th,.totals td{padding:5px 12px;border-bottom:1px solid var(--line);text-align:right}
.totals th:first-child{text-align:left}
.totals td.z{color:#b8bfc7}
.totals td.n-invalid,.totals td.n-missing{color:var(--invalid);font-weight:700}
.totals td.n-warning,.totals td.n-unverifiable{color:#8a4b00;font-weight:700}
.totals td.t{font-weight:600}
.gaps{margin:10px 0 0}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:4px 0 8px;font-size:13px}
.lg{display:inline-flex;align-items:center;gap:5px}
.chip{display:inline-block;width:16px;height:16px;border-radius:3px;text-align:center;line-height:16px;
font-size:11px;font-weight:700;color:#fff;vertical-align:-3px}
.s-valid{background:var(--valid)}.s-pending{background:var(--pending);color:#1d2330}
.s-warning{background:var(--warning);color:#1d2330}.s-unverifiable{background:var(--unverifiable)}
.s-missing{background:var(--missing)}.s-invalid{background:var(--invalid)}
.s-none{background:var(--none);box-shadow:inset 0 0 0 1px #d5dade}
.s-gap{background:repeating-linear-gradient(135deg,#c5cad0 0 4px,#e6e9ec 4px 8px);color:#1d2330}
.group{border-top:1px solid var(--line);padding-top:2px}
.acct{color:var(--muted);font-size:13px;font-weight:400}
.gsum{color:var(--muted);font-size:12.5px;font-weight:400;margin-left:auto}
.grid{display:inline-block}
.row{display:flex;align-items:center;gap:2px;margin:2px 0}
.row .day{width:98px;font:12px ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;color:var(--muted)}
.row.head .hh{width:34px;text-align:center;font-size:11px;color:var(--muted)}
.c{display:inline-block;width:34px;height:24px;border-radius:3px;text-align:center;line-height:24px;
font-size:13px;font-weight:700;color:#fff;text-decoration:none}
a.c{outline:2px solid rgba(0,0,0,.35);outline-offset:-2px}
a.c:hover{outline-color:#000}
.c.out{background:none;box-shadow:inset 0 0 0 1px #eceff1}
.span{display:inline-block;width:862px;height:24px;border-radius:3px;line-height:24px;padding:0 10px;
font-size:12px;color:#fff}
.span.s-none,.span.s-gap,.span.s-pending{color:var(--ink)}
table.problems{width:100%;font-size:13px}
.problems th{text-align:left;border-bottom:2px solid var(--line);padding:6px 8px;white-space:nowrap}
.problems td{border-bottom:1px solid var(--line);padding:6px 8px;vertical-align:top}
.problems td.when{white-space:nowrap}
.problems td.obj b{color:#000}
.problems td.num{color:var(--muted);text-align:right}
.problems td.obj{word-break:break-all;max-width:520px}
.problems td.msg{max-width:360px;word-break:break-word}
.problems tr:target{background:#fff6d6}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff}
.more{font-weight:600;color:#8a4b00}
.cols{display:flex;gap:40px;flex-wrap:wrap}
.cols>div{flex:1;min-width:420px}
.kv th{text-align:left;padding:4px 14px 4px 0;color:var(--muted);font-weight:500;vertical-align:top;
white-space:nowrap}
.kv td{padding:4px 0;word-break:break-all}
.fp td{padding:0 12px 2px 0}
"""
