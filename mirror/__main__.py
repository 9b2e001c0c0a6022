"""``python -m mirror`` is the same program as ``tcia-mirror``."""

from mirror.run.cli import main

main()
