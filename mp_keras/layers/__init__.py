"""Reusable building blocks, one topic per file."""
