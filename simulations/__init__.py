"""Synthetic but realistic partner datasets calibrated on the public reference data (never imported by
production code)."""
