"""litlab.app: the ``litlab`` command around the library in :mod:`litlab.core`.

The CLI and its checks, run folders and run info, W&B tracking and ``litlab sync``,
``litlab export`` and ``litlab sweep``. Nothing in :mod:`litlab.core` or a domain package
imports this package (an import-linter contract in the root ``pyproject.toml``).
"""

from importlib.metadata import version

# litlab.app ships in litlab-core: the version written once, in packages/core/pyproject.toml.
__version__ = version("litlab-core")
