"""`litlab export` on a tiny task: ONNX and TorchScript files that give PyTorch's outputs at
other batch sizes than the traced one, a sidecar that describes them, a validator that catches
a file that does not match, and one-line errors for what the user can fix."""

import json
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from onnx import numpy_helper
from tiny_export_task import (
    IN_FEATURES,
    ExampleInputRegressor,
    NotExportable,
    TinyRegressor,
    fit_and_save,
)

from litlab.app.cli import main
from litlab.app.export.formats import OnnxFormat
from litlab.core.errors import LitlabError
from litlab.core.export.validation import validate_export


@pytest.fixture(autouse=True)
def scratch_dir(in_tmp_dir):
    return in_tmp_dir


def checkpoint_and_config(tmp_path, task_class=TinyRegressor):
    """A checkpoint saved from Python (so it does not name its class) and the config naming
    the task, as `-c` gives it."""
    torch.manual_seed(0)
    task = task_class(hidden=8)
    checkpoint = tmp_path / "model.ckpt"
    fit_and_save(task, checkpoint)
    config = tmp_path / "config.yaml"
    class_path = f"tiny_export_task.{task_class.__name__}"
    config.write_text(yaml.safe_dump({"model": {"class_path": class_path}}))
    return task.eval(), checkpoint, config


def export_error(*args):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", *args])
    message = str(exit_info.value.code)
    assert message.startswith("litlab export: error: "), message
    assert len(message.splitlines()) == 1, message
    return message


def test_onnx_export_matches_pytorch_at_batch_sizes_1_and_3(tmp_path):
    task, checkpoint, config = checkpoint_and_config(tmp_path)
    main(["export", "--ckpt", str(checkpoint), "-c", str(config), "--format", "onnx"])

    exported = tmp_path / "model.onnx"
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    for batch_size in (1, 3):
        features = torch.randn(batch_size, IN_FEATURES)
        (outputs,) = session.run(None, {"features": features.numpy()})
        with torch.no_grad():
            expected = task.model(features)
        np.testing.assert_allclose(outputs, expected.numpy(), atol=1e-5, rtol=1e-5)

    sidecar = json.loads((tmp_path / "model.onnx.json").read_text())
    assert sidecar["inputs"] == [{"name": "features", "shape": ["batch", 4], "dtype": "float32"}]
    assert sidecar["outputs"] == [{"name": "outputs", "shape": ["batch", 3], "dtype": "float32"}]
    assert sidecar["note"] == "tiny"
    checked = [check["inputs"]["features"][0] for check in sidecar["validation"]["checks"]]
    assert {1, 3} <= set(checked)
    assert sidecar["validation"]["max_abs_diff"] < 1e-5


def test_torchscript_export_matches_pytorch_at_batch_sizes_1_and_3(tmp_path):
    task, checkpoint, config = checkpoint_and_config(tmp_path)
    output = tmp_path / "out" / "tiny.pt"
    main(["export", "--ckpt", str(checkpoint), "-c", str(config), "--format", "torchscript",
          "--output", str(output)])  # fmt: skip

    module = torch.jit.load(str(output))
    for batch_size in (1, 3):
        features = torch.randn(batch_size, IN_FEATURES)
        with torch.no_grad():
            torch.testing.assert_close(module(features), task.model(features))
    assert json.loads((tmp_path / "out" / "tiny.pt.json").read_text())["format"] == "torchscript"


def test_example_input_array_is_enough_to_export(tmp_path):
    task, checkpoint, config = checkpoint_and_config(tmp_path, ExampleInputRegressor)
    main(["export", "--ckpt", str(checkpoint), "-c", str(config), "--format", "torchscript"])

    sidecar = json.loads((tmp_path / "model.pt.json").read_text())
    assert sidecar["inputs"] == [{"name": "input", "shape": ["batch", 4], "dtype": "float32"}]
    features = torch.randn(3, IN_FEATURES)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "model.pt"))(features),
                                   task(features))  # fmt: skip


def test_validation_catches_an_export_that_differs_from_pytorch(tmp_path):
    torch.manual_seed(0)
    spec = TinyRegressor(hidden=8).eval().export_spec(None)
    path = tmp_path / "tiny.onnx"
    OnnxFormat().export(spec, path)
    validate_export(OnnxFormat().load(path), spec, atol=1e-4, rtol=1e-3, label="tiny")

    # Tamper with the file: one weight of the first layer changes.
    model = onnx.load(str(path))
    initializer = next(i for i in model.graph.initializer if numpy_helper.to_array(i).ndim == 2)
    weights = numpy_helper.to_array(initializer).copy()
    weights.flat[0] += 0.5
    initializer.CopyFrom(numpy_helper.from_array(weights, initializer.name))
    onnx.save(model, str(path))
    with pytest.raises(LitlabError, match=r"differs by up to .* beyond the tolerance atol=0.0001"):
        validate_export(OnnxFormat().load(path), spec, atol=1e-4, rtol=1e-3, label="tiny")

    # Or compared against another network.
    other = TinyRegressor(hidden=8).eval().export_spec(None)
    with pytest.raises(LitlabError, match="does not match PyTorch"):
        validate_export(OnnxFormat().load(path), other, atol=1e-4, rtol=1e-3, label="tiny")


def test_unknown_format():
    message = export_error("--ckpt", "model.ckpt", "--format", "tflite")
    assert "unknown export format 'tflite'" in message
    assert "onnx, torchscript, hf" in message


def test_task_that_cannot_be_exported(tmp_path):
    _, checkpoint, config = checkpoint_and_config(tmp_path, NotExportable)
    message = export_error("--ckpt", str(checkpoint), "-c", str(config))
    assert "NotExportable cannot be exported" in message
    assert "export_spec" in message
    assert "example_input_array" in message


def test_corrupt_checkpoint_names_the_file(tmp_path):
    checkpoint = tmp_path / "broken.ckpt"
    checkpoint.write_bytes(b"not a checkpoint" * 8)
    message = export_error("--ckpt", str(checkpoint))
    assert str(checkpoint) in message
    assert "corrupt" in message


def test_checkpoint_that_does_not_name_its_task_needs_a_config(tmp_path):
    _, checkpoint, _ = checkpoint_and_config(tmp_path)
    message = export_error("--ckpt", str(checkpoint))
    assert "does not name its task class" in message
    assert "-c CONFIG" in message


def test_best_needs_the_experiment():
    message = export_error("--ckpt", "best")
    assert "--experiment NAME or -c CONFIG" in message


def test_missing_onnx_extra_says_how_to_install_it(tmp_path, monkeypatch):
    _, checkpoint, config = checkpoint_and_config(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    message = export_error("--ckpt", str(checkpoint), "-c", str(config), "--format", "onnx")
    assert "onnxruntime is not installed" in message
    assert "pip install 'litlab-core[export]'" in message
