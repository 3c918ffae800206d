"""Flowplane store package."""
