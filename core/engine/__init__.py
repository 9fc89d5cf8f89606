"""Running a study: plan, build, evaluate, time, verdicts (run.py); the timing harness, the drift re-check,
the child process that isolates a study, the slow-variant probe before the run (slow_probe.py), explanations of
a slowdown after it (explain.py)."""
