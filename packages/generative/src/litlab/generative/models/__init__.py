"""litlab.generative.models."""
