"""The SQLite history of studies, and the variants a study keeps on disk."""
