"""``litlab export``: a checkpoint's network as ONNX or TorchScript (validated against PyTorch)
or, for Hugging Face models, a ``save_pretrained`` folder with any adapter merged in.

``litlab export --ckpt PATH|best|last [--format onnx|torchscript|hf] [--output FILE]
[--experiment NAME --runs_root runs] [-c CONFIG] [--atol 1e-4 --rtol 1e-3]``
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from litlab.app.export.exporter import EXPORT_FORMATS, check_export_format, export_checkpoint
from litlab.core.checkpoints.run_lookup import CHECKPOINT_ALIASES, find_checkpoint
from litlab.core.errors import LitlabError
from litlab.core.export.validation import DEFAULT_ATOL, DEFAULT_RTOL

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Export a checkpoint's network as ONNX or TorchScript, validated against PyTorch, or a "
    "Hugging Face model as a save_pretrained folder with any adapter merged in."
)
EPILOG = """\
examples:
  litlab export --ckpt best -c experiments/vision/mnist_cnn.yaml
  litlab export --ckpt runs/mnist_cnn/<run>/checkpoints/best.ckpt --format torchscript
  litlab export --ckpt last --experiment causal_lm_lora --format hf

ONNX and TorchScript files are run back on random inputs at several batch sizes and compared
with PyTorch; a JSON sidecar (<file>.json) describes the inputs, outputs and preprocessing.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litlab export",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--ckpt",
        required=True,
        help="A .ckpt file, or 'best'/'last': that checkpoint of the newest run of the "
        "experiment (--experiment, else the -c config's name).",
    )
    parser.add_argument(
        "--format",
        default="onnx",
        help=f"One of {', '.join(EXPORT_FORMATS)} (default onnx).",
    )
    parser.add_argument(
        "--output",
        help="The file (or, for hf, folder) to write; default beside the checkpoint: "
        "<stem>.onnx, <stem>.pt or <stem>-merged/.",
    )
    parser.add_argument(
        "-c",
        "--config",
        help="The config the checkpoint was trained with; default the run's config.yaml "
        "beside checkpoints/. Its data section describes the inputs (image shape, "
        "normalisation, class names).",
    )
    parser.add_argument("--experiment", help="Experiment whose run 'best'/'last' refer to.")
    parser.add_argument(
        "--runs_root", default="runs", help="Folder that holds the run folders (default runs)."
    )
    parser.add_argument(
        "--atol", type=float, default=DEFAULT_ATOL, help="Validation: absolute tolerance."
    )
    parser.add_argument(
        "--rtol", type=float, default=DEFAULT_RTOL, help="Validation: relative tolerance."
    )
    return parser


def main(argv: list[str]) -> None:
    """Entry point of ``litlab export`` (see :data:`litlab.app.cli.EXTRA_VERBS`)."""
    args = build_parser().parse_args(argv)
    check_export_format(args.format)
    export_checkpoint(
        _checkpoint_path(args),
        args.format,
        output=args.output,
        config_file=args.config,
        atol=args.atol,
        rtol=args.rtol,
    )


def _checkpoint_path(args: argparse.Namespace) -> Path:
    if args.ckpt not in CHECKPOINT_ALIASES:
        return Path(args.ckpt)
    experiment = args.experiment or (Path(args.config).stem if args.config else None)
    if experiment is None:
        raise LitlabError(
            f"--ckpt {args.ckpt} needs the experiment: give --experiment NAME or -c CONFIG "
            f"(its file name is the experiment's), or a path to a .ckpt file."
        )
    path = find_checkpoint(args.runs_root, experiment, args.ckpt)
    log.info("Using the %s checkpoint %s", args.ckpt, path)
    return path
