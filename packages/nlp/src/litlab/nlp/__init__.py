"""litlab.nlp."""

from importlib.metadata import version

# Written once, in packages/nlp/pyproject.toml; read here from the installed metadata.
__version__ = version("litlab-nlp")
