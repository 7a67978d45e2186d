"""The CLI on evidence directories: exit codes, JSON Lines, AWS CLI text lines, seals, hostile directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from validator.cli import main
from validator.synth import generate
from validator.synth import tamper as T


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def evidence(tmp_path):
    trail = generate()
    seal = trail.write_evidence(str(tmp_path / "ev"))
    return trail, tmp_path / "ev", seal


def jsonl(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def validate_json(trail, path, *extra):
    return cli("validate", "--trail-arn", trail.arn, "--source", str(path), "--output", "json", *extra)


def test_clean_evidence_json_lines(evidence):
    trail, path, seal = evidence
    r = validate_json(trail, path)
    assert r.exit_code == 0, r.output
    lines = jsonl(r)
    assert lines[-1]["kind"] == "summary" and all(x["kind"] != "summary" for x in lines[:-1])
    s = lines[-1]
    assert s["digests"] == {"valid": 12} and s["logs"] == {"valid": len(trail.logs())}
    assert s["trust"] == {"public_keys": "evidence", "manifest_sha256": seal} and s["exit_code"] == 0
    digest = next(x for x in lines if x["kind"] == "digest")
    assert set(digest) >= {"status", "reason", "bucket", "key", "region", "account_id", "start_time", "end_time",
                           "fingerprint", "backfill", "log_count", "message"}
    assert digest["start_time"].endswith("Z")
    log = next(x for x in lines if x["kind"] == "log")
    assert set(log) >= {"status", "reason", "bucket", "key", "digest_key", "message"}


def test_text_output_keeps_the_aws_cli_lines(tmp_path):
    trail = generate()
    victim = T.log_at(trail, "us-east-1", 1)
    T.modify_log(trail, victim.ref)
    trail.write_evidence(str(tmp_path / "ev"))
    r = cli("validate", "--trail-arn", trail.arn, "--source", str(tmp_path / "ev"), "--verbose")
    assert r.exit_code == 1
    assert f"Log file\ts3://{victim.ref.bucket}/{victim.ref.key}\tINVALID: hash value doesn't match" in r.stderr
    assert "Results requested for" in r.stdout and "12/12 digest files valid" in r.stdout
    n = len(trail.logs())
    assert f"{n - 1}/{n} log files valid, 1/{n} log files INVALID" in r.stdout
    assert "\tvalid\n" in r.stdout  # --verbose prints valid files on stdout


def test_object_changed_after_acquisition_is_evidence_modified(evidence):
    trail, path, _ = evidence
    victim = T.log_at(trail, "eu-west-1", 0)
    f = path / "objects" / victim.ref.bucket / victim.ref.key
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    r = validate_json(trail, path)
    assert r.exit_code == 1
    bad = [(x["kind"], x["status"], x["reason"], x["key"]) for x in jsonl(r)[:-1] if x.get("status", "valid") != "valid"]
    assert bad == [("log", "invalid", "evidence_modified", victim.ref.key)]


def test_digest_changed_after_acquisition_is_evidence_modified(evidence):
    trail, path, _ = evidence
    victim = trail.digests()[2]
    f = path / "objects" / victim.ref.bucket / victim.ref.key
    f.write_bytes(b"rewritten")
    lines = jsonl(validate_json(trail, path))
    assert ("invalid", "evidence_modified") in {(x["status"], x["reason"]) for x in lines if x.get("key") == victim.ref.key}


def test_seal_is_checked(evidence):
    trail, path, seal = evidence
    assert validate_json(trail, path, "--manifest-sha256", seal).exit_code == 0
    r = validate_json(trail, path, "--manifest-sha256", "0" * 64)
    assert r.exit_code == 2 and "seal" in r.stderr and r.stdout == ""


def test_rewritten_manifest_breaks_the_seal(evidence):
    trail, path, seal = evidence
    m = path / "manifest.jsonl"
    m.write_bytes(m.read_bytes().replace(b'"source":"synthetic"', b'"source":"edited"'))
    assert validate_json(trail, path, "--manifest-sha256", seal).exit_code == 2


def test_interrupted_acquisition_is_refused(evidence):
    trail, path, _ = evidence
    (path / "manifest.jsonl").unlink()
    r = validate_json(trail, path)
    assert r.exit_code == 2 and "interrupted" in r.stderr


def test_symlinked_object_is_not_followed(evidence, tmp_path):
    trail, path, _ = evidence
    secret = tmp_path / "secret.gz"
    secret.write_bytes(trail.objects[T.log_at(trail, "us-east-1", 0).ref].body)
    victim = T.log_at(trail, "us-east-1", 0)
    f = path / "objects" / victim.ref.bucket / victim.ref.key
    f.unlink()
    f.symlink_to(secret)
    lines = jsonl(validate_json(trail, path))
    rec = next(x for x in lines if x.get("key") == victim.ref.key)
    assert (rec["status"], rec["reason"]) == ("invalid", "evidence_modified")


def test_manifest_naming_a_file_outside_is_refused(evidence):
    trail, path, _ = evidence
    victim = T.log_at(trail, "us-east-1", 0)
    m = path / "manifest.jsonl"
    lines = m.read_bytes().split(b"\n")
    out = []
    for line in lines:
        if victim.ref.key.encode() in line:
            d = orjson.loads(line)
            d["file"] = "objects/../../../../etc/passwd"
            line = orjson.dumps(d)
        out.append(line)
    m.write_bytes(b"\n".join(out))
    rec = next(x for x in jsonl(validate_json(trail, path)) if x.get("key") == victim.ref.key)
    assert (rec["status"], rec["reason"]) == ("invalid", "evidence_modified")


@pytest.mark.parametrize("reseal", [False, True])
def test_lying_key_inside_evidence_is_refused_and_the_run_goes_on(evidence, reseal):
    """A key whose bytes do not hash to its fingerprint is refused; digests it would verify are named."""
    import hashlib
    trail, path, _ = evidence
    keys_path = path / "public-keys.json"
    doc = json.loads(keys_path.read_text())
    victim_fp = doc["PublicKeyList"][0]["Fingerprint"]
    doc["PublicKeyList"][0]["Value"] = doc["PublicKeyList"][1]["Value"]  # lies about its fingerprint
    keys_path.write_text(json.dumps(doc))
    if reseal:  # the attacker rewrites the manifest too: only the lying key is refused
        m = path / "manifest.jsonl"
        header, rest = m.read_bytes().split(b"\n", 1)
        h = orjson.loads(header)
        h["public_keys"]["sha256"] = hashlib.sha256(keys_path.read_bytes()).hexdigest()
        m.write_bytes(orjson.dumps(h) + b"\n" + rest)
    r = validate_json(trail, path)
    assert r.exit_code == 1
    assert ("lies" if reseal else "differs from the manifest") in r.stderr
    bad = [x for x in jsonl(r)[:-1] if x["kind"] == "digest" and x["status"] != "valid"]
    assert {x["reason"] for x in bad} == {"unknown_public_key"}
    if reseal:
        assert {x["fingerprint"] for x in bad} == {victim_fp}
    assert all(x["message"] for x in bad)


def test_public_keys_file_is_a_trust_anchor(evidence, tmp_path):
    trail, path, _ = evidence
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(trail.public_keys_doc()))
    r = validate_json(trail, path, "--public-keys", str(keys))
    assert r.exit_code == 0 and jsonl(r)[-1]["trust"]["public_keys"] == "file"
    # per-region files work as well as one merged list
    files = []
    for region in trail.keys:
        f = tmp_path / f"keys-{region}.json"
        f.write_text(json.dumps(trail.public_keys_doc(region)))
        files += ["--public-keys", str(f)]
    assert validate_json(trail, path, *files).exit_code == 0
    # only one region's keys: the other region's digests have no key
    r = validate_json(trail, path, *files[:2])
    assert r.exit_code == 1
    assert {x["reason"] for x in jsonl(r)[:-1] if x["kind"] == "digest" and x["status"] != "valid"} == {"unknown_public_key"}


@pytest.mark.parametrize("content,needle", [
    ('{"PublicKeyList": [{"Value": "AAAA", "Fingerprint": "00"}]}', "refused"),
    ("not json", "not JSON"),
    ('{"nothing": 1}', "refused"),
])
def test_malformed_key_file_is_exit_2(evidence, tmp_path, content, needle):
    trail, path, _ = evidence
    keys = tmp_path / "keys.json"
    keys.write_text(content)
    r = validate_json(trail, path, "--public-keys", str(keys))
    assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,needle", [
    (["--trail-arn", "arn:aws:s3:::bucket"], "not a trail ARN"),
    (["--start-time", "2026-11-03", "--end-time", "2026-11-02"], "before"),
    (["--start-time", "yesterday"], "ISO 8601"),
    (["--source", "/nonexistent/dir"], "does not exist"),
    (["--backfill-horizon", "forever"], "duration"),
])
def test_bad_arguments_are_exit_2(evidence, args, needle):
    trail, path, _ = evidence
    base = {"--trail-arn": trail.arn, "--source": str(path)}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    r = CliRunner().invoke(main, ["validate", *flat])
    assert r.exit_code == 2 and needle in r.output


def test_module_and_console_script_entry_points(evidence):
    trail, path, _ = evidence
    for cmd in ([sys.executable, "-m", "validator"], [str(Path(sys.executable).with_name("ctvalidate"))]):
        p = subprocess.run([*cmd, "validate", "--trail-arn", trail.arn, "--source", str(path), "--output", "json"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout.splitlines()[-1])["exit_code"] == 0


def test_generate_command_writes_a_tampered_evidence_directory(tmp_path):
    r = cli("generate", str(tmp_path / "g"), "--hours", "4", "--regions", "us-east-1",
            "--tamper", "modify-log:us-east-1:0", "--tamper", "delete-digest:us-east-1:1")
    assert r.exit_code == 0, r.output
    arn = next(line.split(": ")[1] for line in r.stdout.splitlines() if line.startswith("trail-arn"))
    res = validate_json(type("T", (), {"arn": arn}), tmp_path / "g")
    bad = sorted((x["kind"], x["reason"]) for x in jsonl(res)[:-1] if x["status"] not in ("valid",))
    assert ("digest", "not_found") in bad and ("log", "hash_mismatch") in bad
    assert res.exit_code == 1


def test_window_bounds_are_reported_in_summary(evidence):
    trail, path, _ = evidence
    r = validate_json(trail, path, "--start-time", "2026-11-02T02:00:00Z", "--end-time", "2026-11-02T04:00:00Z")
    s = jsonl(r)[-1]
    assert s["requested"] == {"start_time": "2026-11-02T02:00:00Z", "end_time": "2026-11-02T04:00:00Z"}
    assert s["found"]["start_time"] == "2026-11-02T02:00:00Z"
    assert r.exit_code == 0


def test_no_stdout_pollution_in_json_mode(evidence):
    trail, path, _ = evidence
    for line in validate_json(trail, path).stdout.splitlines():
        assert isinstance(json.loads(line), dict)
    assert os.path.isdir(path)
