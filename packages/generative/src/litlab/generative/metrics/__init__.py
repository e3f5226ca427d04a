"""litlab.generative.metrics."""
