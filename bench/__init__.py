"""Benchmarks of the hub: run `bench/run`; results go to bench/results/ (not committed)."""
