"""Side-by-side benchmarks: tcia-mirror vs tcia-utils vs nbiatoolkit vs a raw-download floor.

    python3 benchmarks/run.py [--quick] [--runs N] [--only b1,b2,b3,b4] [--work DIR]
                              [--no-nbiatoolkit]

Builds its datasets with the offline simulator under benchmarks/.work/ (once, then
reused), runs every contender in turn in a fresh child process against the same server
on 127.0.0.1, and prints Markdown tables of medians and ratios. See benchmarks/RESULTS.md.
nbiatoolkit runs from its own venv, made from PyPI on first use under benchmarks/.work/.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sidebyside.cli import main

if __name__ == "__main__":
    sys.exit(main())
