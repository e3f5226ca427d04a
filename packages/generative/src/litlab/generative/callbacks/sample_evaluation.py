"""At test time: how good are a generative model's samples? FID and KID against the test
images, and how confidently and how evenly a trained classifier labels the samples."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger

from litlab.core.checkpoints.run_lookup import find_checkpoint
from litlab.core.data_facts import DataFacts, data_facts_of
from litlab.core.errors import LitlabError
from litlab.core.number_types import ClosedUnitInterval, PositiveFloat, PositiveInt
from litlab.generative.metrics.classifier_features import ClassifierFeatures
from litlab.generative.metrics.feature_distances import FeatureDistances
from litlab.generative.metrics.inception_features import InceptionFeatures
from litlab.generative.metrics.label_statistics import PredictedLabelStatistics
from litlab.vision.data.image_classification import PIXEL_RANGE_STATISTICS

log = logging.getLogger(__name__)

# A dry run checks the wiring, not the numbers: a handful of samples, not num_samples.
FAST_DEV_RUN_SAMPLES = 8
# sample_images promises [0, 1]; beyond this rounding slack the contract is broken.
RANGE_TOLERANCE = 1e-3
TRAIN_CLASSIFIER_HINT = "uv run litlab fit -c experiments/vision/mnist_cnn.yaml"


class SampleEvaluation(Callback):
    """Scores the samples of a generative task at the end of ``litlab test``.

    The real images are the test set's (``batch[0]`` of each test batch, mapped to [0, 1] from
    the datamodule's ``pixel_range``); the samples come from ``pl_module.sample_images(n)``,
    which must return (n, C, H, W) in [0, 1]. Logged, the feature network named in the key:

    - ``test/fid_<features>``, ``test/kid_<features>``, ``test/kid_<features>_std``: FID and KID
      on the classifier's penultimate-layer features (``<features>`` = the classifier's
      experiment, e.g. ``mnist_cnn``) or on Inception-v3's (``inception``, needs torch-fidelity
      and a download);
    - ``test/confident_share``: the share of samples the classifier labels with a probability
      above ``confidence_threshold``, beside ``test/confident_share_real``, the same on the
      test images;
    - ``test/label_entropy``: the normalised entropy of the samples' label histogram (1: all
      classes equally often, 0: one class only).

    The label histogram and all the numbers go to ``sample_evaluation.json`` in the run folder
    and, with W&B, to a table.
    """

    def __init__(
        self,
        classifier: str | None = None,
        num_samples: PositiveInt = 1000,
        feature: Literal["classifier", "inception"] = "classifier",
        sample_batch_size: PositiveInt = 250,
        runs_root: str = "runs",
        confidence_threshold: ClosedUnitInterval = 0.9,
        kid_subsets: PositiveInt = 100,
        kid_subset_size: PositiveInt = 1000,
        seed: int | None = 0,
        classifier_mean: list[float] | None = None,
        classifier_std: list[PositiveFloat] | None = None,
        inception_weights: str | None = None,
    ) -> None:
        """Args:
        classifier: A trained litlab image classifier: its experiment name (the ``best.ckpt``
            of its newest run under ``runs_root``, e.g. ``mnist_cnn``) or a ``.ckpt`` path.
            Needed for ``feature: classifier`` and for the label statistics.
        num_samples: Images to generate (split over processes).
        feature: The network FID and KID compare features of: the classifier's penultimate
            layer, or Inception-v3 (the standard FID, comparable with papers).
        sample_batch_size: Images per ``sample_images`` call.
        runs_root: Folder of the run folders, where ``classifier`` experiments are found.
        confidence_threshold: A sample counts as confidently labelled above this probability.
        kid_subsets: Random subsets KID is averaged over.
        kid_subset_size: Samples per KID subset (capped by the samples there are).
        seed: Seed of the sampling and of KID's subsets (the global random state is left as
            it was), so the numbers are repeatable; None: use the global random state.
        classifier_mean: Per-channel mean the classifier was trained with; default: what its
            run saved (its datamodule).
        classifier_std: Per-channel std the classifier was trained with; default: as above.
        inception_weights: torch-fidelity's Inception weights file; default: download.
        """
        if feature not in ("classifier", "inception"):
            raise LitlabError(f"feature must be 'classifier' or 'inception', got {feature!r}")
        if classifier is None and feature == "classifier":
            raise LitlabError(
                "SampleEvaluation(feature='classifier') needs a classifier: an experiment name "
                "such as mnist_cnn or a .ckpt path"
            )
        if num_samples < 2 or sample_batch_size < 1:
            raise LitlabError(
                f"num_samples must be at least 2 and sample_batch_size at least 1, got "
                f"{num_samples} and {sample_batch_size}"
            )
        self.classifier = classifier
        self.num_samples = num_samples
        self.feature = feature
        self.sample_batch_size = sample_batch_size
        self.runs_root = runs_root
        self.confidence_threshold = confidence_threshold
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.seed = seed
        self.classifier_mean = classifier_mean
        self.classifier_std = classifier_std
        self.inception_weights = inception_weights
        self.classifier_path: Path | None = None
        self.metrics: dict[str, float] = {}
        self.results: dict[str, Any] = {}

    # ----- set-up

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "test":
            return
        if not callable(getattr(pl_module, "sample_images", None)):
            raise LitlabError(
                f"SampleEvaluation needs a generative task with sample_images(n) returning "
                f"(n, C, H, W) images in [0, 1]; {type(pl_module).__name__} has none."
            )
        self._classifier_net: ClassifierFeatures | None = None
        if self.classifier is not None:
            self.classifier_path, name = self._classifier_checkpoint()
            self._classifier_net = ClassifierFeatures.from_checkpoint(
                self.classifier_path, self.classifier_mean, self.classifier_std, name
            )
        self._features = (
            self._classifier_net
            if self.feature == "classifier"
            else InceptionFeatures(self.inception_weights)
        )
        self._distances = FeatureDistances(
            self._features.num_features, self.kid_subsets, self.kid_subset_size
        )
        # Label statistics of the real test images (True) and of the samples (False).
        self._labels = {
            real: PredictedLabelStatistics(
                self._classifier_net.num_classes, self.confidence_threshold
            )
            for real in ((True, False) if self._classifier_net is not None else ())
        }

    def _classifier_checkpoint(self) -> tuple[Path, str | None]:
        """The classifier's checkpoint and, when given by experiment, its name."""
        value = str(self.classifier)
        if value.endswith(".ckpt") or "/" in value or "\\" in value:
            path = Path(value)
            if not path.is_file():
                raise LitlabError(
                    f"classifier checkpoint not found: {path}. Train the classifier first "
                    f"({TRAIN_CLASSIFIER_HINT}) and give its best.ckpt or its experiment name."
                )
            return path, None
        try:
            return find_checkpoint(self.runs_root, value, "best"), value
        except LitlabError as err:
            raise LitlabError(
                f"no trained classifier {value!r}: no best.ckpt under "
                f"{Path(self.runs_root) / value}. Train it first: uv run litlab fit -c "
                f"experiments/vision/{value}.yaml (or give runs_root / a .ckpt path)."
            ) from err

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._scale, self._shift = _unit_range(data_facts_of(trainer.datamodule), pl_module.device)
        self._image_shape: tuple[int, ...] | None = None
        for module in (self._features, self._classifier_net):
            if module is not None:
                module.to(pl_module.device)
        for metric in (self._distances, *self._labels.values()):
            metric.to(pl_module.device).reset()

    # ----- real images, then samples

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        images = (images.float() * self._scale + self._shift).clamp(0, 1)
        self._image_shape = tuple(images.shape[1:])
        self._add(images, real=True)

    def _add(self, images: torch.Tensor, real: bool) -> None:
        if self._classifier_net is None:
            features = self._features(images)
        else:
            features, probabilities = self._classifier_net.features_and_probabilities(images)
            self._labels[real].update(probabilities)
            if self.feature != "classifier":
                features = self._features(images)
        self._distances.update(features, real=real)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._image_shape is None:
            raise LitlabError("SampleEvaluation saw no test images to compare the samples with")
        wanted = FAST_DEV_RUN_SAMPLES if trainer.fast_dev_run else self.num_samples
        per_process = -(-wanted // trainer.world_size)
        with torch.random.fork_rng(devices=_cuda_devices(pl_module.device)):
            if self.seed is not None:
                torch.manual_seed(self.seed + trainer.global_rank)  # other samples per process
            for start in range(0, per_process, self.sample_batch_size):
                count = min(self.sample_batch_size, per_process - start)
                self._add(self._checked_samples(pl_module, count), real=False)
            if self.seed is not None:
                torch.manual_seed(self.seed)  # the same KID subsets in every process
            self.metrics, histogram = self._compute()
        for key, value in self.metrics.items():
            # Synced states: the same values in every process (KID's subsets aside when unseeded).
            pl_module.log(f"test/{key}", value, sync_dist=True)
        num_real = self._distances.fid.real_features_num_samples.double()
        self.results = {
            "feature_network": _key_part(self._features.name),
            "classifier_checkpoint": str(self.classifier_path) if self.classifier_path else None,
            "num_samples": per_process * trainer.world_size,
            "num_real": int(trainer.strategy.reduce(num_real, reduce_op="sum")),
            **self.metrics,
        }
        if histogram is not None:
            self.results["confidence_threshold"] = self.confidence_threshold
            self.results["label_histogram"] = histogram
        log.info(
            "sample evaluation (%d samples vs %d test images): %s",
            self.results["num_samples"],
            self.results["num_real"],
            ", ".join(f"{key} {value:.4g}" for key, value in self.metrics.items()),
        )
        self._save(trainer)

    def _checked_samples(self, pl_module: LightningModule, count: int) -> torch.Tensor:
        images = pl_module.sample_images(count)
        expected = (count, *self._image_shape)
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise LitlabError(
                f"{type(pl_module).__name__}.sample_images({count}) must return images of "
                f"shape {expected} (like the test images), got {shape}"
            )
        images = images.float().to(self._scale.device)
        low, high = images.min().item(), images.max().item()
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise LitlabError(
                f"{type(pl_module).__name__}.sample_images must return values in [0, 1], "
                f"got {low:.3f} to {high:.3f}"
            )
        return images.clamp(0, 1)

    # ----- results

    def _compute(self) -> tuple[dict[str, float], list[float] | None]:
        """The logged numbers (the feature network's name in the FID/KID keys) and the
        samples' label histogram."""
        name = _key_part(self._features.name)
        distances = self._distances.compute()
        metrics = {
            f"fid_{name}": distances["fid"].item(),
            f"kid_{name}": distances["kid"].item(),
            f"kid_{name}_std": distances["kid_std"].item(),
        }
        if self._classifier_net is None:
            return metrics, None
        real, samples = self._labels[True].compute(), self._labels[False].compute()
        metrics["confident_share"] = samples["confident_share"].item()
        metrics["confident_share_real"] = real["confident_share"].item()
        metrics["label_entropy"] = samples["label_entropy"].item()
        return metrics, samples["label_histogram"].tolist()

    def _save(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero:
            return
        folder = Path(trainer.log_dir or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sample_evaluation.json").write_text(json.dumps(self.results, indent=2) + "\n")
        histogram = self.results.get("label_histogram")
        if histogram is None:
            return
        names = data_facts_of(trainer.datamodule).classes
        if not names or len(names) != len(histogram):
            names = [str(label) for label in range(len(histogram))]
        rows = [[str(n), share] for n, share in zip(names, histogram, strict=True)]
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table("test/label_histogram", columns=["label", "share"], data=rows)


def _unit_range(facts: DataFacts, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with images * scale + shift in [0, 1], from the data's pixel_range."""
    pixel_range = facts.pixel_range
    if pixel_range in PIXEL_RANGE_STATISTICS:
        mean, std = PIXEL_RANGE_STATISTICS[pixel_range]
        scale, shift = [std], [mean]
    elif pixel_range == "standardized" and facts.mean is not None and facts.std is not None:
        scale, shift = list(facts.std), list(facts.mean)
    else:
        raise LitlabError(
            f"SampleEvaluation maps the test images to [0, 1] by the datamodule's pixel_range "
            f"('unit', 'symmetric' or 'standardized', with its mean and std); the data has "
            f"{pixel_range!r}. Use a litlab.vision image datamodule."
        )
    return (
        torch.tensor(scale, device=device).view(1, -1, 1, 1),
        torch.tensor(shift, device=device).view(1, -1, 1, 1),
    )


def _cuda_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _key_part(name: str) -> str:
    """``name`` as part of a metric key: lower case, other characters as one ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "features"
