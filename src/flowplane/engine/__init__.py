"""Flowplane engine package."""
