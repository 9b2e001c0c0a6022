"""The sync engine: discovery (listing -> plan -> catalog), the planner, the per-series
job and the worker pool that runs it, the MD5-hierarchy check, filters, manifests and
the metadata.csv ledger written after a collection changes."""
