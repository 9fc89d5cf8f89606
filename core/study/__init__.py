"""Frozen specs in, plain events and results out, the cancel token, and project files (a spec as JSON and back)."""
