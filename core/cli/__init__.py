"""The `quantbench` command line: the one parser (``parser``), `run` (``main``), and the history commands.

``parser`` defines every option, the window's included; ``main`` and ``history`` import it and
nothing imports back. Exit codes: 0 done; 2 bad input (one sentence on stderr, no traceback);
1 internal error; 3 a variant graded at or below --fail-on; 130 cancelled.
"""

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_FAIL_ON, EXIT_CANCELLED = 0, 1, 2, 3, 130
