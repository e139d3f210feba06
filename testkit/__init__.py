"""Test servers and process rigs shared by tests/ and benchmarks/ (not part of the service)."""
