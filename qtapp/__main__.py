"""``python -m qtapp`` opens the window (same options as ``quantbench``)."""

from qtapp.app import main

raise SystemExit(main())
