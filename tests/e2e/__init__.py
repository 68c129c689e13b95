"""End-to-end tests: unmodified real clients against the running sidecar."""
