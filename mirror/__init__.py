"""tcia-mirror: keep a local copy of The Cancer Imaging Archive incrementally in sync."""

__version__ = "0.1.0"
