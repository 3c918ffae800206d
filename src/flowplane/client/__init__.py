"""Flowplane client package."""
