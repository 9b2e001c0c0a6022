"""The archive on disk: where each series lives (layout), when a stored copy is complete
and exact (completeness) and how a stored copy is checked again later (verify)."""
