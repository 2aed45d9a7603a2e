"""Timings of the simulations (printed and saved under ``benchmarks/results/``; never asserted in tests)."""
