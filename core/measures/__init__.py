"""What is measured, as numbers: task metrics, fidelity against the baseline, latency statistics."""
