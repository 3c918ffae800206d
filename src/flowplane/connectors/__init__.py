"""Flowplane connectors package."""
