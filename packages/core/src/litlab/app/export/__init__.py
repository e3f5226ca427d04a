"""``litlab export``: a trained checkpoint's network as an ONNX or TorchScript file (validated
against PyTorch) or, for Hugging Face models, a ``save_pretrained`` folder.

What a task declares about itself (``export_spec``) and the check of an exported file against
PyTorch are library code, in :mod:`litlab.core.export`; this package loads the checkpoint,
writes the files and runs the command.
"""
