"""Shared pytest configuration.

Hypothesis profiles come first (keep them here, at the top); fixtures may follow below.
Pick one with ``pytest --hypothesis-profile=NAME`` (or ``HYPOTHESIS_PROFILE=NAME``):

- ``ci`` (default): enough examples to find shape bugs, fast enough for every push;
- ``dev``: a quick look while editing;
- ``nightly``: thousands of examples per property.

``deadline=None``: building and running torch modules has uneven timings.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=10, deadline=None, print_blob=True)
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --------------------------------------------------------------------------- fixtures below
