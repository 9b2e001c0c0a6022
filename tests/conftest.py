"""Suite-wide fixtures: the simulator and the real Postgres server live in their own modules."""

import os

from hypothesis import HealthCheck, settings

# Property tests are the same on every run and machine: derandomized, no example database
# carried between runs, and no per-example deadline or speed check (a loaded CI machine
# is not a failure).
settings.register_profile("suite", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Settings must come from each test's own config, never from the developer's shell.
for _name in [n for n in os.environ if n.startswith("TCIA_MIRROR_")]:
    del os.environ[_name]

pytest_plugins = ["tests.fixtures_sim", "tests.fixtures_pg",
                  "tests.e2e.careless"]  # fixtures of the careless-user tests
