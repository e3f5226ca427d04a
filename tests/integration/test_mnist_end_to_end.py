"""`litlab fit` then `litlab test --ckpt_path best`, as a user runs them, on the real MNIST files,
with W&B offline because there is no login."""

import csv
import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from wandb_records import config_updates

REPO_ROOT = Path(__file__).resolve().parents[2]
MNIST_MLP = REPO_ROOT / "experiments" / "vision" / "mnist_mlp.yaml"
LITLAB = Path(sys.executable).parent / "litlab"
SHORT_RUN = [
    "--trainer.max_epochs", "2",
    "--trainer.limit_train_batches", "4",
    "--trainer.limit_val_batches", "2",
    "--trainer.enable_progress_bar", "false",
    "--data.init_args.num_workers", "0",
]  # fmt: skip


def litlab(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(LITLAB), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def no_wandb_login(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "no-netrc"), WANDB_SILENT="true")
    return env


@pytest.mark.slow
def test_fit_keeps_best_and_last_then_test_reports_accuracy(data_root, in_tmp_dir, no_wandb_login):
    fit = litlab("fit", "-c", str(MNIST_MLP), *SHORT_RUN, env=no_wandb_login, cwd=in_tmp_dir)

    (run_dir,) = (in_tmp_dir / "runs" / "mnist_mlp").iterdir()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "fit resources: wall time" in fit.stderr

    # The resolved config is saved with the run, overrides applied.
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 2
    configured_lr = yaml.safe_load(MNIST_MLP.read_text())["model"]["init_args"]["lr"]
    assert saved["model"]["init_args"]["lr"] == pytest.approx(configured_lr)

    # No login: offline, said once, and the exact sync command printed at the end.
    assert fit.stderr.count("no login found") == 1
    sync = re.search(r"wandb sync (\S+)", fit.stderr)
    assert sync, fit.stderr[-2000:]
    # The command names the run's offline parts (one per resumed part) by a shell pattern.
    (offline_run,) = (Path(p) for p in glob.glob(str(in_tmp_dir / sync.group(1))))
    assert offline_run.is_dir()
    assert offline_run.parent == run_dir / "wandb"
    assert offline_run.name.endswith(run_dir.name.rsplit("-", 1)[-1])  # W&B id = run id

    # The config reached W&B once, nested (not flattened), and as a file.
    (records,) = offline_run.glob("run-*.wandb")
    updates = dict(config_updates(records))
    keys = [key for key, _ in config_updates(records) if key != "_wandb"]
    assert len(keys) == len(set(keys)), keys
    assert {"model", "data", "trainer", "seed_everything"} <= set(keys)
    assert not any("/" in key or key in ("lr", "num_classes") for key in keys), keys
    assert json.loads(updates["model"])["init_args"]["lr"] == pytest.approx(configured_lr)
    uploaded = offline_run / "files" / "litlab-config.yaml"
    assert uploaded.read_text() == (run_dir / "config.yaml").read_text()

    # best.ckpt holds the epoch with the highest val/acc.
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    (state,) = [v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert state["monitor"] == "val/acc"
    assert Path(state["best_model_path"]).name == "best.ckpt"

    test = litlab(
        "test", "-c", str(MNIST_MLP), "--ckpt_path", "best",
        "--trainer.limit_test_batches", "3", "--data.init_args.num_workers", "0",
        env=no_wandb_login, cwd=in_tmp_dir,
    )  # fmt: skip
    assert f"Using the best checkpoint {Path('runs') / 'mnist_mlp' / run_dir.name}" in test.stderr
    accuracy = re.search(r"test/acc\s*│\s*([0-9.]+)", test.stdout)
    assert accuracy, test.stdout[-2000:]
    assert 0.1 < float(accuracy.group(1)) <= 1.0

    # predict: a folder of images in, one CSV row per image out, in the new run's folder.
    images = in_tmp_dir / "my_digits"
    images.mkdir()
    for name, shade in (("a.png", 0), ("b.jpg", 255)):
        Image.new("L", (40, 40), shade).save(images / name)
    predict = litlab(
        "predict", "-c", str(MNIST_MLP), "--ckpt_path", "best",
        "--data.init_args.predict_dir", str(images), "--data.init_args.num_workers", "0",
        env=no_wandb_login, cwd=in_tmp_dir,
    )  # fmt: skip
    written = re.search(r"Predictions written to (\S+)", predict.stderr)
    assert written, predict.stderr[-2000:]
    rows = list(csv.DictReader((in_tmp_dir / written.group(1)).open()))
    assert [row["id"] for row in rows] == ["a.png", "b.jpg"]
    assert all(row["label"] in "0123456789" and 0 < float(row["probability"]) <= 1 for row in rows)


@pytest.mark.slow
def test_two_process_ddp_shares_one_run_folder(data_root, in_tmp_dir, no_wandb_login):
    """The same config on 2 CPU processes (gloo) by changing trainer.* only."""
    litlab(
        "fit", "-c", str(MNIST_MLP), *SHORT_RUN,
        "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.precision", "bf16-mixed",
        env=no_wandb_login, cwd=in_tmp_dir,
    )  # fmt: skip
    (run_dir,) = (in_tmp_dir / "runs" / "mnist_mlp").iterdir()
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
