"""Async client for the TCIA APIs (legacy v3, NBIA v1, NBIA v4)."""

from mirror.tcia.client import TciaClient

__all__ = ["TciaClient"]
