"""Charts of the results view: each a small class updated in place, never rebuilt while data streams."""
