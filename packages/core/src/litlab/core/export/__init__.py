"""What a task declares to be exported, and the check of an exported model against PyTorch.

A task opts in to ``litlab export`` by providing ``export_spec(datamodule) -> ExportSpec`` (the
network and its inputs), or Lightning's ``example_input_array``; ``export_hf(path, datamodule)``
for ``--format hf``. Core knows no domain package: tasks describe themselves. The command
itself is :mod:`litlab.app.export`.
"""

from litlab.core.export.spec import DynamicAxis, ExportSpec, TensorSpec

__all__ = ["DynamicAxis", "ExportSpec", "TensorSpec"]
