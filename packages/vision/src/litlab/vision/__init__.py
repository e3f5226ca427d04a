"""litlab.vision."""
