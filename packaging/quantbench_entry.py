"""The bundle's entry point: ``dist/QuantBench/quantbench`` runs this with the frozen interpreter.

A study runs in a child process started with multiprocessing's "spawn": in a frozen program the
child is this same executable, started with ``--multiprocessing-fork``. ``freeze_support()`` must
come first, so that such a child runs the study's code and never parses the command line or opens
a window. The guard matters too: the child imports this file again as ``__mp_main__``.
"""

import multiprocessing
import os

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if os.environ.get("QUANTBENCH_FIRST_HISTOGRAM_FILE"):  # packaging/time_first_histogram.py is timing the window
        import first_histogram_probe

        first_histogram_probe.install(os.environ["QUANTBENCH_FIRST_HISTOGRAM_FILE"])
    from qtapp.launcher import main

    raise SystemExit(main())
