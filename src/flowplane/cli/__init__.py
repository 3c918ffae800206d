"""Flowplane cli package."""
