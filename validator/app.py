"""execute(): from a parsed request to records, reports and an exit code. The CLI only builds the request."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO

from .core.keys import KeyRing
from .errors import ConfigError, SourceError
from .model import format_time
from .policy import RunConfig
from .report import make_reporter
from .sources.base import Source


@dataclass(frozen=True)
class ValidateRequest:
    config: RunConfig
    source_dir: str | None = None
    public_key_files: tuple[str, ...] = ()
    manifest_sha256: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    output: str = "text"
    verbose: bool = False


def open_source(req: ValidateRequest) -> Source:
    if req.source_dir:
        from .sources.evidence import EvidenceSource
        return EvidenceSource(req.source_dir)
    from .sources.s3 import S3Source
    return S3Source.create(endpoint_url=req.endpoint_url, region=req.region, profile=req.profile,
                           workers=req.config.workers)


def load_keys(req: ValidateRequest) -> tuple[KeyRing | None, str | None]:
    """Keys from --public-keys files; None lets the source supply them (ListPublicKeys, evidence)."""
    if req.public_key_files:
        from .cli import load_key_files
        return load_key_files(req.public_key_files), "file"
    return None, None


def run_validate(req: ValidateRequest, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from .pipeline import Validation
    try:
        source = open_source(req)
        if req.manifest_sha256 and (source.manifest_sha256 or "").lower() != req.manifest_sha256.strip().lower():
            raise ConfigError(f"the evidence manifest hashes to {source.manifest_sha256}, not to the seal "
                              f"{req.manifest_sha256}: the evidence directory was changed")
        keys, origin = load_keys(req)
        validation = Validation(source, req.config, keys, origin)
    except ConfigError as exc:
        err.write(f"ctvalidate: error: {exc}\n")
        return 2
    except SourceError as exc:
        err.write(f"ctvalidate: error: {exc}\n")
        return 2
    for problem in getattr(source, "problems", []):
        err.write(f"ctvalidate: warning: {problem}\n")
    reporter = make_reporter(req.output, out, err, req.verbose)
    reporter.start({"trail_arn": str(req.config.trail), "start_time": format_time(req.config.start),
                    "end_time": format_time(validation.window_end)})
    try:
        for record in validation.records():
            reporter.record(record)
    except KeyboardInterrupt:
        validation.interrupt()
    except (ConfigError, SourceError) as exc:  # e.g. a folder that cannot be listed: one line, not a traceback
        err.write(f"ctvalidate: error: {exc}\n")
        return 2
    reporter.finish(validation.summary)
    source.close()
    return validation.summary.exit_code
