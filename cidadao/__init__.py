"""Cidadão.AI runtime: the Ray-free domain library (contracts, storage, red flags)."""

__all__ = ["__version__"]
__version__ = "0.1.0"
