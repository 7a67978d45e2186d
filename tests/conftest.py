"""Hypothesis profiles: a bounded run in CI; `HYPOTHESIS_PROFILE=soak python3 tasks.py test tests/unit/test_properties.py` for a long one."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
