"""The window's panels: setup on the left (model, schemes, dataset, run), results on the right."""
