"""Trainer values out of Lightning's range are refused in one line, before a run starts."""

import inspect

import pytest
from jsonargparse import Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer

from litlab.app.trainer_checks import RULES, check_trainer_values
from litlab.core.errors import LitlabError

BAD = [
    ("max_epochs", -5, "-1 for no limit"),
    ("max_epochs", -2, "-1 for no limit"),
    ("min_epochs", -1, ">= 0"),
    ("max_steps", -2, "-1 for no limit"),
    ("min_steps", -1, ">= 0"),
    ("devices", 0, "-1 for all devices"),
    ("devices", "0", "-1 for all devices"),
    ("devices", -2, "-1 for all devices"),
    ("devices", [], "-1 for all devices"),
    ("num_nodes", 0, ">= 1"),
    ("fast_dev_run", -1, ">= 0"),
    ("limit_train_batches", -1, "[0, 1]"),
    ("limit_val_batches", 1.5, "[0, 1]"),
    ("limit_test_batches", -0.1, "[0, 1]"),
    ("limit_predict_batches", -3, "[0, 1]"),
    ("overfit_batches", 2.5, "[0, 1]"),
    ("val_check_interval", 0, "(0, 1]"),
    ("val_check_interval", 0.0, "(0, 1]"),
    ("val_check_interval", -0.5, "(0, 1]"),
    ("check_val_every_n_epoch", 0, ">= 1"),
    ("num_sanity_val_steps", -2, "-1 for all batches"),
    ("log_every_n_steps", -1, ">= 1, or 0"),
    ("accumulate_grad_batches", 0, ">= 1"),
    ("gradient_clip_val", -1.0, ">= 0"),
    ("reload_dataloaders_every_n_epochs", -1, ">= 0"),
]

GOOD = [
    ("max_epochs", -1),
    ("max_epochs", 0),
    ("max_steps", -1),
    ("devices", "auto"),
    ("devices", "0,1"),
    ("devices", "-1"),
    ("devices", [0]),
    ("devices", -1),
    ("devices", 2),
    ("fast_dev_run", True),
    ("fast_dev_run", False),
    ("fast_dev_run", 3),
    ("limit_train_batches", 0),
    ("limit_train_batches", 0.0),
    ("limit_train_batches", 1.0),
    ("limit_train_batches", 20),
    ("limit_val_batches", 20.0),
    ("val_check_interval", 0.25),
    ("val_check_interval", 100),
    ("val_check_interval", "00:00:10:00"),
    ("val_check_interval", {"minutes": 5}),
    ("check_val_every_n_epoch", None),
    ("num_sanity_val_steps", -1),
    ("log_every_n_steps", 0),
    ("gradient_clip_val", 0.5),
    ("max_time", "00:12:00:00"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), BAD)
def test_a_value_out_of_range_is_named_with_its_range(key, value, allowed):
    with pytest.raises(LitlabError) as error:
        check_trainer_values({key: value})
    message = str(error.value)
    assert message.startswith(f"invalid value for 'trainer.{key}': {value} is out of range (")
    assert allowed in message
    assert "\n" not in message


@pytest.mark.parametrize(("key", "value"), GOOD)
def test_values_lightning_accepts_pass(key, value):
    check_trainer_values({key: value})


def test_the_parsed_config_and_unset_keys():
    check_trainer_values(Namespace(max_epochs=5, devices="auto", gradient_clip_val=None))
    check_trainer_values({})
    with pytest.raises(LitlabError, match=r"'trainer\.accumulate_grad_batches': 0 "):
        check_trainer_values(Namespace(max_epochs=5, accumulate_grad_batches=0))


# What Lightning itself refuses when the Trainer is built (too late for litlab: the run folder
# exists by then); the table must refuse it too, and let through what Lightning takes.
LIGHTNING_REFUSES = [
    ("max_epochs", -2),
    ("max_steps", -2),
    ("num_nodes", 0),
    ("devices", 0),
    ("devices", "0"),
    ("devices", []),
    ("fast_dev_run", -1),
    ("limit_train_batches", -1),
    ("limit_val_batches", 1.5),
    ("overfit_batches", -0.5),
]
LIGHTNING_TAKES = [
    ("max_epochs", -1),
    ("max_steps", -1),
    ("limit_train_batches", 0.5),
    ("limit_val_batches", 2.0),
    ("val_check_interval", 0.5),
]


def build_trainer(tmp_path, **kwargs) -> Trainer:
    return Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
    )


@pytest.mark.parametrize(("key", "value"), LIGHTNING_REFUSES)
def test_the_table_refuses_what_lightning_refuses(tmp_path, key, value):
    with pytest.raises((MisconfigurationException, ValueError)):
        build_trainer(tmp_path, **{key: value})
    with pytest.raises(LitlabError):
        check_trainer_values({key: value})


@pytest.mark.parametrize(("key", "value"), LIGHTNING_TAKES)
def test_the_table_takes_what_lightning_takes(tmp_path, key, value):
    build_trainer(tmp_path, **{key: value})
    check_trainer_values({key: value})


def test_every_rule_is_a_trainer_argument():
    assert set(RULES) <= set(inspect.signature(Trainer.__init__).parameters)
