"""The study history and what a study keeps on disk.

- ``store``: ``StudyStore``, the SQLite history (queries, writes, retries while another process holds it).
- ``schema``: its tables, schema version and the upgrade from schema 1.
- ``transactions``: one write transaction, SQLite's errors told apart and put in one sentence.
- ``variant_rows``: how a variant's result is laid out in a row (samples as raw float64 bytes).
- ``liveness``: whether the process that owns a "running" study is still there.
- ``recorder``: ``StudyRecorder`` (events into the store) and ``StudyRecording``, the one recorder
  ``quantbench run`` and the window put around a study's event stream.
- ``saved_variants``: ``VariantSaver``, the built variants copied out as the study runs.
"""
