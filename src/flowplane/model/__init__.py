"""Flowplane model package."""
