"""Test configuration shared by every test file.

Recent hypothesis versions (6.155 is installed here) load a built-in "ci" profile when CI is
set: derandomized draws (CI runs the same examples every time), no deadline, no example
database. pyproject.toml allows older versions, which lack that profile: register the same one
there, so that CI behaves alike whichever version it installs. Each test's own
``@settings(max_examples=...)`` still sets its budget.
"""
import os

from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

try:
    settings.get_profile("ci")
except InvalidArgument:
    settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    if os.environ.get("CI"):
        settings.load_profile("ci")
