"""Fixtures that run the real sidecar (`friday serve`) against the test Redis. Filled in by the transport work."""
