"""Benchmarks: each prints a table, writes JSON and compares against a baseline measured in the same run."""
