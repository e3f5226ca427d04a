"""litlab.generative."""

from importlib.metadata import version

# Written once, in packages/generative/pyproject.toml; read here from the installed metadata.
__version__ = version("litlab-generative")
