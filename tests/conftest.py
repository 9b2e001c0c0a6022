"""Suite-wide fixtures: the simulator and the real Postgres server live in their own modules."""

import os

# Settings must come from each test's own config, never from the developer's shell.
for _name in [n for n in os.environ if n.startswith("TCIA_MIRROR_")]:
    del os.environ[_name]

pytest_plugins = ["tests.fixtures_sim", "tests.fixtures_pg",
                  "tests.e2e.careless"]  # fixtures of the careless-user tests
