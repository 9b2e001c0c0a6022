"""The ways to run the engine: the command line, one-shot sync and verify, the daemon and
the download-only worker, with their status page, progress display and metrics.

- ``cli``: flags, logging set-up, which mode runs; ``exits``: errors -> one line + exit code;
  ``output``: how a mode's result is printed.
- ``components``: what every mode wires (catalog, clients per source, archive claim,
  collection names). Modes import it, never each other (``worker`` reuses ``daemon``).
- Modes: ``oneshot`` (sync, dry run), ``verify``, ``daemon`` (+ ``metrics``,
  ``statuspage``), ``worker``; ``progress``: bars or log lines while a sync runs.
"""
