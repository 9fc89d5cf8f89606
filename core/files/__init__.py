"""QuantBench's files on disk: atomic writes, the trust list, logs."""
