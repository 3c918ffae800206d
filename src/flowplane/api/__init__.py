"""Flowplane api package."""
