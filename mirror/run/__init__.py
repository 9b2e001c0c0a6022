"""The ways to run the engine: the command line, one-shot sync and verify, the daemon and
the download-only worker, with their status page, progress display and metrics."""
