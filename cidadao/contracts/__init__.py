"""Contracts: identifiers, the canonical schema, source readers, validation and synthetic data."""
