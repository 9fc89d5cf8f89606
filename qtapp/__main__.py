"""``python -m qtapp`` opens the window (same options as ``quantbench``)."""

from qtapp.launcher import main

# Guarded: a study's child process (multiprocessing "spawn") imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
