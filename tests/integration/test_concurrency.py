"""Over S3 (moto behind the proxy, over HTTP), `--workers 8` writes exactly what `--workers 1` writes.

The JSON Lines output is compared byte for byte, records and summary, on a clean organization
trail (two accounts, two regions: four groups that run ahead of each other with several workers)
and on the same trail with several attacks at once. The proxy's small listing pages and an added
delay on some reads make the completion order differ from the request order.
"""

from __future__ import annotations

import pytest

from validator.model import format_time

from .awsproxy import Fault

pytestmark = pytest.mark.integration

TAMPERS = ("modify-log:us-east-1:1", "delete-log:eu-west-1:2", "trailing-log:us-east-1:3",
           "inject-log:eu-west-1:2", "modify-digest:us-east-1:1", "delete-digest:eu-west-1:1",
           "chain-hash:us-east-1:2", "strip-metadata:eu-west-1:2", "reencrypt-log:us-east-1:0")


@pytest.mark.parametrize("tampers", [(), TAMPERS], ids=["clean", "tampered"])
def test_eight_workers_write_the_records_of_one_worker(world, tampers):
    trail = world.deploy(tampers, org_id="o-placeholder00", accounts=("111122223333", "444455556666"),
                         hours=5, logs_per_hour=(2, 3), kms_key_arn="create", bucket_default_key="create")
    first_region_logs = [o.ref.key for o in trail.logs(region="us-east-1")][:3]
    for key in first_region_logs:  # the first group's reads are slow: later groups finish first
        world.state.faults.append(Fault("delay", key, times=-1, delay=0.3))
    end = ("--end-time", format_time(trail.acquired_at))  # not "now": the summary names the window's end
    one = world.validate(trail, *end, "--workers", "1")
    many = world.validate(trail, *end, "--workers", "8")
    assert one.exit_code == many.exit_code == (1 if tampers else 0), one.stderr
    assert many.stdout == one.stdout
    assert len(one.of("digest")) >= 4 * 5 - 1 and len(one.of("log")) >= 40
    if tampers:
        assert len(one.problems()) >= len(TAMPERS) - 1
