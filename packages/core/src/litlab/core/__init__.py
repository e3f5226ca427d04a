"""litlab.core: the library every litlab domain package builds on.

The Task base, shared layers, callbacks, resumable loaders, checkpoint I/O and checks, seeding,
schedulers and value types. The ``litlab`` command around it is :mod:`litlab.app`, which this
package never imports.
"""

from importlib.metadata import version

from litlab.core.errors import LitlabError

__all__ = ["LitlabError", "__version__"]

# Written once, in packages/core/pyproject.toml; read here from the installed metadata.
__version__ = version("litlab-core")
