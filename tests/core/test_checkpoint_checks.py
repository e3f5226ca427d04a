"""Checks of a checkpoint before it is loaded: it reads, and it fits the model."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from torch import nn

from litlab.core.checkpoints.checks import (
    STAMP_KEY,
    CheckpointError,
    check_checkpoint,
    check_config_classes,
    check_hyperparameters,
    litlab_version,
    read_checkpoint,
    stamp_checkpoint,
)
from litlab.core.task import Task


class TinyTask(Task):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.network = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))


class OtherTask(TinyTask):
    pass


def save(path, module: nn.Module, **extra) -> None:
    checkpoint = {"state_dict": module.state_dict(), **extra}
    stamp_checkpoint(checkpoint, module)
    torch.save(checkpoint, path)


def test_stamp_names_the_task_class_and_version():
    checkpoint: dict = {}
    stamp_checkpoint(checkpoint, TinyTask())
    assert checkpoint[STAMP_KEY] == {
        "version": litlab_version(),
        "task": f"{__name__}.TinyTask",
        "network": "torch.nn.modules.container.Sequential",
    }
    assert litlab_version().count(".") >= 1


def test_a_fitting_checkpoint_passes(tmp_path, caplog):
    path = tmp_path / "good.ckpt"
    save(path, TinyTask())
    with caplog.at_level(logging.WARNING):
        check_checkpoint(path, TinyTask())
    assert caplog.records == []


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "not a complete checkpoint archive"),
        (lambda data: bytes(range(256)) * 8, "not a complete checkpoint archive"),
        (lambda data: b"", "the file is empty"),
    ],
    ids=["truncated", "random bytes", "empty"],
)
def test_unreadable_files_are_named(tmp_path, damage, reason):
    path = tmp_path / "last.ckpt"
    save(path, TinyTask())
    path.write_bytes(damage(path.read_bytes()))
    (tmp_path / "best.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(path, TinyTask())
    message = str(info.value)
    assert message.startswith(f"checkpoint {path} is corrupt or truncated: {reason}")
    assert f"Use another checkpoint, e.g. {tmp_path / 'best.ckpt'}" in message


def test_damage_inside_a_whole_archive_is_named(tmp_path):
    path = tmp_path / "last.ckpt"
    save(path, TinyTask())
    data = bytearray(path.read_bytes())
    start = data.find(b"state_dict")  # in the pickle, the archive's first entry
    data[start : start + 10] = b"\xff" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(path, TinyTask())
    assert str(info.value).startswith(f"checkpoint {path} is corrupt or truncated: Unicode")
    assert "Use another checkpoint, e.g. the run's best.ckpt." in str(info.value)


def test_a_file_without_state_dict_is_not_a_lightning_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(TinyTask().state_dict(), path)
    with pytest.raises(
        CheckpointError, match="is not a Lightning checkpoint: it has no state_dict"
    ):
        check_checkpoint(path, TinyTask())


def test_pickled_objects_are_refused_by_weights_only_with_the_way_out(tmp_path):
    path = tmp_path / "objects.ckpt"
    save(path, TinyTask(), hyper_parameters={"fn": functools.partial(print)})
    with pytest.raises(CheckpointError, match="add --weights_only false") as info:
        check_checkpoint(path, TinyTask())
    assert "functools.partial" in str(info.value)
    check_checkpoint(path, TinyTask(), weights_only=False)


def test_missing_and_renamed_keys_are_listed(tmp_path):
    path = tmp_path / "renamed.ckpt"
    state = TinyTask().state_dict()
    state["network.0.kernel"] = state.pop("network.0.weight")
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(path, TinyTask())
    message = str(info.value)
    assert message.startswith(f"checkpoint {path} does not fit the model the config builds")
    assert "1 tensor(s) missing from it: network.0.weight" in message
    assert "1 tensor(s) not in the model: network.0.kernel" in message


def test_shapes_are_compared(tmp_path):
    path = tmp_path / "wide.ckpt"
    save(path, TinyTask(width=8))
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(path, TinyTask(width=4))
    message = str(info.value)
    assert "3 tensor(s) of another shape: network.0.bias (8,) (model: (4,))" in message
    assert "network.0.weight (8, 3) (model: (4, 3))" in message


def test_another_class_that_does_not_fit_is_named_in_the_error(tmp_path):
    path = tmp_path / "other.ckpt"
    save(path, OtherTask(width=8))
    with pytest.raises(
        CheckpointError,
        match=r"it was made by OtherTask\(Sequential\), the config builds TinyTask\(Sequential\)",
    ):
        check_checkpoint(path, TinyTask(width=4))


def test_another_class_whose_weights_fit_loads_with_a_warning(tmp_path, caplog):
    path = tmp_path / "other.ckpt"
    save(path, OtherTask())
    with caplog.at_level(logging.WARNING):
        check_checkpoint(path, TinyTask())
    assert (
        "was made by OtherTask(Sequential), the config builds TinyTask(Sequential)" in caplog.text
    )


def test_a_litlab_command_refuses_another_class_even_where_the_weights_fit(tmp_path):
    path = tmp_path / "other.ckpt"
    save(path, OtherTask())
    with pytest.raises(CheckpointError, match=r"made by OtherTask\(Sequential\), the config"):
        check_checkpoint(path, TinyTask(), same_classes=True)


def test_a_config_naming_another_model_is_refused_before_building_it(tmp_path):
    path = tmp_path / "other.ckpt"
    save(path, OtherTask())
    checkpoint = torch.load(path, weights_only=True)
    other = f"{OtherTask.__module__}.OtherTask"
    tiny = {"class_path": f"{TinyTask.__module__}.TinyTask"}
    with pytest.raises(CheckpointError, match=r"holds OtherTask\(Sequential\), a\.yaml asks"):
        check_config_classes(path, checkpoint, tiny, "a.yaml")
    check_config_classes(path, checkpoint, {"class_path": other}, "a.yaml")
    check_config_classes(path, checkpoint, None, "a.yaml")  # the config names no model


def test_another_litlab_version_is_a_warning_or_part_of_the_error(tmp_path, caplog):
    path = tmp_path / "old.ckpt"
    torch.save(
        {"state_dict": TinyTask().state_dict(), STAMP_KEY: {"version": "0.0.1", "task": "x.Y"}},
        path,
    )
    with caplog.at_level(logging.WARNING):
        check_checkpoint(path, OtherTask())
    assert f"written by litlab-core 0.0.1, this is {litlab_version()}" in caplog.text
    with pytest.raises(CheckpointError, match=r"written by litlab-core 0\.0\.1"):
        check_checkpoint(path, TinyTask(width=8))


def test_a_non_strict_module_is_checked_for_shapes_only(tmp_path):
    path = tmp_path / "partial.ckpt"
    state = {k: v for k, v in TinyTask().state_dict().items() if k.startswith("network.2")}
    torch.save({"state_dict": state}, path)
    module = TinyTask()
    module.strict_loading = False
    check_checkpoint(path, module)
    narrow = TinyTask(width=8)
    narrow.strict_loading = False
    with pytest.raises(CheckpointError, match="of another shape"):
        check_checkpoint(path, narrow)


def test_a_non_strict_module_names_the_tensors_it_cannot_do_without(tmp_path):
    path = tmp_path / "partial.ckpt"
    state = {k: v for k, v in TinyTask().state_dict().items() if k.startswith("network.2")}
    torch.save({"state_dict": state}, path)
    module = TinyTask()
    module.strict_loading = False
    module.required_state_names = lambda: set(state)
    check_checkpoint(path, module)
    module.required_state_names = lambda: {*state, "network.0.weight"}
    with pytest.raises(CheckpointError, match=r"1 tensor\(s\) missing from it: network\.0\.weight"):
        check_checkpoint(path, module)


def test_read_checkpoint_memory_mapped_gives_the_saved_tensors(tmp_path):
    path = tmp_path / "good.ckpt"
    module = TinyTask()
    save(path, module)
    loaded = read_checkpoint(path, mmap=True)
    torch.testing.assert_close(loaded["state_dict"], module.state_dict(), rtol=0, atol=0)


class ForwardingTask(Task):
    """Hands Task's optimizer arguments on through ``**kwargs``, as the domain tasks do."""

    def __init__(self, width: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = nn.Linear(3, width)


@pytest.mark.parametrize(
    ("hparams", "problem"),
    [
        ({"width": 4, "lr": 0.1, "lr_scheduler_interval": "step"}, None),
        ({"width": 4, "removed_arg": 1}, "ForwardingTask takes no argument removed_arg"),
    ],
    ids=["forwarded-arguments-taken", "unknown-argument-named"],
)
def test_hyperparameters_check_follows_kwargs_to_the_base_task(tmp_path, hparams, problem):
    path = tmp_path / "old.ckpt"
    class_path = f"{ForwardingTask.__module__}.{ForwardingTask.__qualname__}"
    checkpoint = {"hyper_parameters": {"_class_path": class_path, **hparams}}
    if problem is None:
        check_hyperparameters(path, checkpoint)
        return
    with pytest.raises(CheckpointError, match=problem):
        check_hyperparameters(path, checkpoint)
