"""Flowplane services package."""
