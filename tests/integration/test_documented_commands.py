"""Every command the docs print still parses, so a renamed option, key or file breaks CI and not
a reader's first try.

The commands are read from README.md and docs/*.md (every line of a fenced code block that runs
litlab, and the inline ```uv run ...``` commands of the prose) and from the comment headers of
experiments/**/*.yaml: ``litlab ...``, ``uv run litlab ...``, ``torchrun ... .venv/bin/litlab
...`` and the SLURM script (which runs ``litlab fit -c CONFIG ...``), with the lines a shell
would join joined and ``# comments`` dropped. Each is checked without running anything:

- ``fit``, ``validate``, ``test``, ``predict``: litlab's own parser, in this process, with
  ``--print_config`` after the verb (an option of the subcommand's parser; jsonargparse prints
  once every argument is parsed, so a bad key still fails). It exits before litlab resolves
  ``--ckpt_path``, so ``best``, ``last`` and checkpoint paths need no run;
- ``sweep``, ``sync``, ``export``: the verb's argparse parser, plus the files it names (the
  sweep file and its program, the export's config and experiment);
- ``python -m MODULE`` and ``python benchmarks/FILE.py``: the module or file exists and takes
  the options shown.

The commands run in a scratch folder that links the checkout's experiments/ and scripts/ and
holds stand-ins for what earlier commands would have made there.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from litlab.app.cli import main
from litlab.app.entry_point import EXTRA_VERBS
from litlab.app.export.command import check_export_format
from litlab.app.sweeps.spec import default_sweep_name, load_sweep

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
EXPERIMENTS = sorted((REPO_ROOT / "experiments").rglob("*.yaml"))
LIGHTNING_VERBS = {"fit", "validate", "test", "predict"}
LITLAB_VERBS = LIGHTNING_VERBS | {"sweep", "sync", "export"}

# Placeholders the docs use in commands. <run> is filled in (nothing reads the checkpoint);
# <task> stands for every config of a folder, each of which tests/integration/
# test_experiments.py runs, so those commands are skipped.
FILLED = {"<run>": "20261122-120000-abcd1234"}
SKIPPED = {"<task>"}
USER_FOLDERS = ["my_digits"]  # `litlab predict --data.predict_dir my_digits/`


def _joined(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(first line number, line) with the lines a shell reads as one joined: after a
    backslash, or while a litlab command's quote is open."""
    commands, pending, start = [], "", 0
    for number, line in lines:
        if not pending:
            start = number
        pending += " " + line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        if _runs_litlab(pending) and _open_quote(pending):
            continue
        commands.append((start, pending.strip()))
        pending = ""
    return commands


def _open_quote(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return True
    return False


def _runs_litlab(command: str) -> bool:
    # Only lines that start as a command does: prose and printed output ("litlab: ...") may
    # name a verb too, and hold quotes that shlex cannot split.
    first = command.split(maxsplit=1)[0] if command.strip() else ""
    verbs = "|".join(LITLAB_VERBS)
    return (
        first in {"uv", "litlab", "srun", "torchrun", "sbatch"} or first.endswith("/litlab")
    ) and bool(re.search(rf"(^|[\s/])litlab\s+({verbs})(\s|$)|litlab\.sbatch\s", command))


def _code_block_commands(text: str) -> list[tuple[int, str]]:
    commands, block = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            if block is not None:
                commands += _joined(block)
            block = None if block is not None else []
        elif block is not None:
            block.append((number, line))
    return commands


def _inline_commands(text: str) -> list[tuple[int, str]]:
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in re.finditer(r"`(uv run [^`]+)`", text)
    ]


def _yaml_header_commands(text: str) -> list[tuple[int, str]]:
    header = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("#"):
            break
        header.append((number, line[1:]))
    return _joined(header)


def _litlab_argv(command: str) -> list[str] | None:
    """The arguments after ``litlab`` of a shell line that runs it, else None."""
    if not _runs_litlab(command):
        return None
    words = shlex.split(command, comments=True)
    if words[:2] == ["sbatch", "scripts/slurm/litlab.sbatch"]:
        # The script's usage: <experiment.yaml> [litlab fit overrides...].
        assert (REPO_ROOT / words[1]).is_file()
        return ["fit", "-c", *words[2:]]
    for index, word in enumerate(words[:-1]):
        if (word == "litlab" or word.endswith("/litlab")) and words[index + 1] in LITLAB_VERBS:
            return words[index + 1 :]
    return None


def _commands(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    if path.suffix == ".yaml":
        return _yaml_header_commands(text)
    return _code_block_commands(text) + _inline_commands(text)


def _documented(kind: str) -> list:
    """(argv, where) of each distinct litlab command, or (python command, where) for kind
    ``python``; ``where`` lists every file:line that prints it."""
    found: dict[tuple[str, ...], list[str]] = {}
    for doc in (*DOCS, *EXPERIMENTS):
        text = doc.read_text()
        if kind == "python":
            for match in re.finditer(r"python (-m [\w.]+|\S+\.py)([^`\n]*)", text):
                line = text.count("\n", 0, match.start()) + 1
                found.setdefault(tuple(match.group(1, 2)), []).append(
                    f"{doc.relative_to(REPO_ROOT)}:{line}"
                )
            continue
        for line, command in _commands(doc):
            argv = _litlab_argv(command)
            if argv is None or any(mark in command for mark in SKIPPED):
                continue
            for placeholder, value in FILLED.items():
                argv = [arg.replace(placeholder, value) for arg in argv]
            verb_kind = "lightning" if argv[0] in LIGHTNING_VERBS else "own"
            if verb_kind == kind:
                found.setdefault(tuple(argv), []).append(f"{doc.relative_to(REPO_ROOT)}:{line}")
    return [pytest.param(list(key), where, id=where[0]) for key, where in found.items()]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("documented")
    for name in ("experiments", "scripts"):
        (folder / name).symlink_to(REPO_ROOT / name)
    # `litlab sweep FILE --summary` writes runs/sweeps/<name>/best.yaml, the program's config
    # with the best values, which the docs then train again: the program's config stands in.
    for sweep_file in (REPO_ROOT / "experiments").rglob("*.sweep.yaml"):
        sweep = yaml.safe_load(sweep_file.read_text())
        name = sweep.get("name", default_sweep_name(sweep_file))
        best = folder / "runs" / "sweeps" / name / "best.yaml"
        best.parent.mkdir(parents=True, exist_ok=True)
        best.write_text((REPO_ROOT / sweep["program"]).read_text())
    # A checkpoint given alone brings its run's config.yaml, which litlab reads before parsing:
    # a run of every preset stands in, with empty checkpoints (nothing reads them here).
    for config in EXPERIMENTS:
        if config.name.endswith(".sweep.yaml"):
            continue
        run = folder / "runs" / config.stem / FILLED["<run>"]
        (run / "checkpoints").mkdir(parents=True)
        (run / "config.yaml").write_text(config.read_text())
        for checkpoint in ("best.ckpt", "last.ckpt"):
            (run / "checkpoints" / checkpoint).write_bytes(b"")
    for name in USER_FOLDERS:
        (folder / name).mkdir()
    return folder


@pytest.fixture
def in_scratch(scratch, monkeypatch) -> Path:
    monkeypatch.chdir(scratch)
    # LightningCLI warns when pytest's own arguments are in sys.argv.
    monkeypatch.setattr(sys, "argv", ["litlab"])
    return scratch


def test_the_docs_print_commands_of_every_kind():
    assert len(_documented("lightning")) > 20
    verbs = {param.values[0][0] for param in _documented("own")}
    assert verbs == {"sweep", "sync", "export"}
    assert len(_documented("python")) >= 3


@pytest.mark.parametrize(("argv", "where"), _documented("lightning"))
def test_documented_lightning_command_parses(argv, where, in_scratch, capsys):
    if "--help" not in argv and "--print_config" not in argv:
        argv = [argv[0], "--print_config", *argv[1:]]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (None, 0), f"{', '.join(where)}: {exit_info.value.code}"
    assert capsys.readouterr().out


@pytest.mark.parametrize(("argv", "where"), _documented("own"))
def test_documented_litlab_verb_parses(argv, where, in_scratch, capsys):
    module = importlib.import_module(EXTRA_VERBS[argv[0]][0])
    try:
        args = module.build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{', '.join(where)}: {capsys.readouterr().err}")
    if argv[0] == "sweep":
        load_sweep(args.file)  # the file and its program: config exist and are valid
    if argv[0] == "export":
        check_export_format(args.format)
        assert args.config is None or Path(args.config).is_file(), where
        if args.experiment:
            assert list(Path("experiments").glob(f"*/{args.experiment}.yaml")), where


@pytest.mark.parametrize(("command", "where"), _documented("python"))
def test_documented_python_command_exists(command, where):
    target, rest = command
    options = re.findall(r"(?<!\S)--[\w-]+", rest)
    if target.startswith("-m "):
        spec = importlib.util.find_spec(target[3:])
        assert spec is not None, f"{', '.join(where)}: no module {target[3:]}"
        source = Path(spec.origin).read_text()
    else:
        assert (REPO_ROOT / target).is_file(), f"{', '.join(where)}: no file {target}"
        source = (REPO_ROOT / target).read_text()
    for option in options:
        assert f'"{option}"' in source, f"{', '.join(where)}: {target} takes no {option}"
