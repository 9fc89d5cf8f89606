"""Qt-free view state: what the window shows, computed from events (tested with plain pytest)."""
