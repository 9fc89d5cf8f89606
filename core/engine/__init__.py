"""Running a study: plan, build, evaluate, time, verdicts (run.py); the timing harness, the drift re-check,
the child process that isolates a study, explanations of a slowdown."""
