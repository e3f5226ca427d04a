"""litlab.generative.tasks."""
