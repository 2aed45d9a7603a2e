"""The autodiagnostic de mobilité as a web service: a released use-case-1 model served to job
seekers and counselors in French, behind a fairness gate (``r2dde autodiag serve``)."""
