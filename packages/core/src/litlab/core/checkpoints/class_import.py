"""Classes by the dotted path that configs and checkpoints record (``package.module.Name``).

Lightning's ``instantiate_class`` and jsonargparse import such paths too, but raise a bare
``ImportError``/``AttributeError`` that names neither the file that asked for the class nor the
package to install; every litlab reader of a class path goes through :func:`import_class`.
"""

from __future__ import annotations

import importlib
from typing import Any

from litlab.core.errors import LitlabError


def import_class(class_path: str, source: object, base: type | None = None) -> Any:
    """What ``class_path`` names, checked to be a subclass of ``base`` when one is given.

    Args:
        class_path: ``package.module.Name``.
        source: What names it (a config or checkpoint file), for the error messages.
        base: The class it must derive from.
    """
    module_name, _, class_name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise LitlabError(
            f"{source} names {class_path}, which cannot be imported ({err}); install the "
            f"package that defines it."
        ) from err
    if base is not None and not (isinstance(found, type) and issubclass(found, base)):
        raise LitlabError(f"{class_path} (named by {source}) is not a {base.__name__}.")
    return found
