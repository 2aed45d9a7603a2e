"""The hash-chained audit log, its JSON Lines export, and the auditor's offline verification."""
