"""The archive on disk: where each series lives (layout), how a stored copy is checked
(verify) and the per-collection files written beside the series (metadata.csv)."""
