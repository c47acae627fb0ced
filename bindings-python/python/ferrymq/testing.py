"""Test-only helpers. A ManualClock passed as ``Queue(path, test_clock=clock)`` replaces the
wall clock for that queue: delays, leases, retries and checks move only when the test
moves it. Production code has no reason to import this module."""

from ._native import ManualClock

__all__ = ["ManualClock"]
