"""Side-by-side benchmarks: tcia-mirror vs tcia-utils vs a raw floor (benchmarks/run.py)."""
