"""Flowplane api.routes package."""
