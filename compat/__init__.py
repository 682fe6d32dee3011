"""The stock-client compatibility matrix and benchmarks (SCENARIOS.md)."""
