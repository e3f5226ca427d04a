"""litlab.core: the library every litlab domain package builds on.

The Task base, shared layers, callbacks, resumable loaders, checkpoint I/O and checks, seeding,
schedulers and value types. The ``litlab`` command around it is :mod:`litlab.app`, which this
package never imports.
"""

from litlab.core.errors import LitlabError

__all__ = ["LitlabError"]
