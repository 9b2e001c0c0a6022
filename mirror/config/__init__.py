"""Configuration: the settings a run uses (settings), how each value is checked (values)
and the named extra servers of ``[sources.NAME]`` (sources)."""
