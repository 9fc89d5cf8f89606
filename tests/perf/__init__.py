"""QuantBench's benchmark suite (issue #6): ``python -m tests.perf --json FILE [--quick]``.

Benchmarks, not tests: pytest does not collect this folder (pyproject's
testpaths are tests/core and tests/qtapp). Each ``bench_*`` module measures one
claim side by side on this machine in this run and can also be run alone:
``python -m tests.perf.bench_overhead --quick`` prints its JSON.
"""
