"""litlab.vision."""

from importlib.metadata import version

# Written once, in packages/vision/pyproject.toml; read here from the installed metadata.
__version__ = version("litlab-vision")
