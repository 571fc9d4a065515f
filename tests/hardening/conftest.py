"""Hypothesis profiles for the fuzzers in this directory (``test_fuzz_*``).

``ci`` (the default): a fixed, derandomized budget of 200 examples per
property, so ``make test`` runs the same examples every time in bounded
time. ``fuzz`` (``make fuzz``, ``HYPOTHESIS_PROFILE=fuzz``): 20,000
examples per property, randomized, for a long search.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
