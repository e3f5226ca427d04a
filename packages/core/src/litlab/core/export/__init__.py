"""``litlab export``: a trained checkpoint's network as an ONNX or TorchScript file (validated
against PyTorch) or, for Hugging Face models, a ``save_pretrained`` folder.

A task opts in by providing ``export_spec(datamodule) -> ExportSpec`` (the network and its
inputs), or Lightning's ``example_input_array``; ``export_hf(path, datamodule)`` for
``--format hf``. Core knows no domain package: tasks describe themselves.
"""

from litlab.core.export.spec import DynamicAxis, ExportSpec, TensorSpec

__all__ = ["DynamicAxis", "ExportSpec", "TensorSpec"]
