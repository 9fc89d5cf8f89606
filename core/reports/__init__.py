"""The faces of a result other than the window: the text table, HTML, SVG and CSV."""
