"""``python -m mirror`` is the same program as ``tcia-mirror``."""

from mirror.cli import main

main()
