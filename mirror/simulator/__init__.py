"""Offline TCIA: an aiohttp server speaking v3, NBIA v1 and NBIA v4 over a generated dataset.

Tests use :func:`mirror.simulator.testing.start_simulator`; people use
``tcia-mirror simulate`` (:mod:`mirror.simulator.cli`).
"""
