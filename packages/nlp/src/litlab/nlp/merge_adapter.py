"""Merge a saved adapter into its base model and save the result as a plain Hugging Face model.

``uv run python -m litlab.nlp.merge_adapter ADAPTER_DIR OUTPUT_DIR [--base BASE]``

``ADAPTER_DIR`` is a peft adapter folder (``adapter_config.json`` + weights), e.g. the
``checkpoints/best-adapter`` folder of a LoRA run. The base model is the one the adapter
config names (``base_model_name_or_path``) unless ``--base`` gives another; its tokenizer, if
it has one, is saved with the merged model. The output loads with
``AutoModelForCausalLM.from_pretrained`` and needs no peft.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from transformers import AutoTokenizer

from litlab.core.errors import LitlabError
from litlab.nlp.models.hf_causal_lm import ADAPTER_CONFIG_FILE, HFCausalLM
from litlab.nlp.pretrained import resolve_pretrained

log = logging.getLogger(__name__)


def merge_adapter(
    adapter_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    base: str | None = None,
) -> Path:
    """Writes ``base`` (default: the adapter's own base) with the adapter merged into
    ``output_dir``, with the base's tokenizer when it has one; returns ``output_dir``."""
    config_path = Path(adapter_dir) / ADAPTER_CONFIG_FILE
    if not config_path.is_file():
        raise LitlabError(
            f"{adapter_dir} is not an adapter folder (no {ADAPTER_CONFIG_FILE}): give the "
            f"folder written beside a LoRA checkpoint (checkpoints/best-adapter) or by "
            f"HFCausalLM.save_pretrained."
        )
    base = base or json.loads(config_path.read_text()).get("base_model_name_or_path")
    if not base:
        raise LitlabError(f"{config_path} does not name its base model: give it with --base MODEL.")
    model = HFCausalLM(pretrained=base, adapter_path=str(adapter_dir), trainable_adapter=False)
    model.merge_adapter()
    tokenizer = _tokenizer_of(base)
    model.save_merged(output_dir, tokenizer)
    log.info("Merged %s into %s: saved to %s", adapter_dir, base, output_dir)
    return Path(output_dir)


def _tokenizer_of(base: str) -> object | None:
    try:
        return AutoTokenizer.from_pretrained(resolve_pretrained(base))
    except (OSError, ValueError):
        log.warning("No tokenizer found with %s: the merged model is saved without one.", base)
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m litlab.nlp.merge_adapter", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("adapter_dir", help="peft adapter folder (adapter_config.json + weights)")
    parser.add_argument("output_dir", help="folder for the merged Hugging Face model")
    parser.add_argument("--base", help="base model name or folder (default: the adapter's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        merge_adapter(args.adapter_dir, args.output_dir, args.base)
    except LitlabError as err:
        sys.exit(f"merge_adapter: error: {err}")


if __name__ == "__main__":
    main()
