"""``python -m core.cli``: the headless commands."""

from core.cli.main import main

raise SystemExit(main())
