"""Trust broker: decides what may be computed, keeps the privacy-budget ledger and the audit chain."""
