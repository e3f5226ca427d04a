"""litlab.generative."""
