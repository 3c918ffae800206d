"""Flowplane security package."""
