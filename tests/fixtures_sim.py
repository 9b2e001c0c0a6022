"""Simulator fixtures (filled in with the simulator)."""
