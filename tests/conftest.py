"""Hypothesis profiles: a bounded run with the same examples every time in CI (`ci`, the default), a long one on demand (`soak`).

    CTV_HYPOTHESIS_PROFILE=soak python3 tasks.py test tests/unit/test_properties.py

(`HYPOTHESIS_PROFILE` works too.) A soak run with another seed explores other examples:
`... test tests/unit/test_properties.py --hypothesis-seed=N`.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,  # the same examples every CI run
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("CTV_HYPOTHESIS_PROFILE") or os.environ.get("HYPOTHESIS_PROFILE") or "ci")
