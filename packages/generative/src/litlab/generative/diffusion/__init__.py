"""litlab.generative.diffusion."""
