"""litlab.core: shared layers, tracking, run folders and the ``litlab`` command."""

from litlab.core.errors import LitlabError

__all__ = ["LitlabError"]
