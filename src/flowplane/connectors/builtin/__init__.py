"""Flowplane connectors.builtin package."""
