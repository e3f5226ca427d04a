"""Callbacks of the generative models: image grids to files and W&B."""
