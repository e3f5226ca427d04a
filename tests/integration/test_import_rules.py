"""The dependency direction between the litlab packages (docs/architecture.md) holds, the
checker that guards it really catches a forbidden import, and the CLI stays light."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CORE_CONTRACT = "core imports no domain package"


def _lint_imports(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def test_repo_keeps_its_import_contracts() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    names = [contract["name"] for contract in config["tool"]["importlinter"]["contracts"]]

    result = _lint_imports(cwd=REPO_ROOT)
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    for name in names:
        assert re.search(rf"^{re.escape(name)} KEPT$", output, re.MULTILINE), output
    assert f"Contracts: {len(names)} kept, 0 broken." in output, output


def _write_tree(root: Path, *, bad_import: bool) -> dict[str, str]:
    """A tiny litlab with core and vision, and the repo's core contract as INI config.

    `litlab` gets an __init__.py here on purpose: a regular package on PYTHONPATH shadows
    the namespace portions the dev venv's editable installs add, so only this tree is
    analysed (as a namespace it would merge with the real packages/*/src trees).
    """
    src = root / "src" / "litlab"
    for package in (src, src / "core", src / "vision"):
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
    if bad_import:
        (src / "core" / "bad.py").write_text("import litlab.vision\n")
    (root / ".importlinter").write_text(
        "[importlinter]\n"
        "root_packages =\n"
        "    litlab\n"
        "\n"
        "[importlinter:contract:core-no-domain]\n"
        f"name = {CORE_CONTRACT}\n"
        "type = forbidden\n"
        "source_modules =\n"
        "    litlab.core\n"
        "forbidden_modules =\n"
        "    litlab.vision\n"
    )
    return {**os.environ, "PYTHONPATH": str(root / "src")}


def test_forbidden_import_is_caught(tmp_path: Path) -> None:
    env = _write_tree(tmp_path, bad_import=True)

    result = _lint_imports("--config", str(tmp_path / ".importlinter"), cwd=tmp_path, env=env)
    output = result.stdout + result.stderr

    assert result.returncode != 0, output
    assert f"{CORE_CONTRACT} BROKEN" in output, output
    assert "litlab.core.bad -> litlab.vision" in output, output


def test_same_tree_without_the_import_is_kept(tmp_path: Path) -> None:
    """Control for the test above: the failure comes from bad.py, not from the set-up."""
    env = _write_tree(tmp_path, bad_import=False)

    result = _lint_imports("--config", str(tmp_path / ".importlinter"), cwd=tmp_path, env=env)
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert f"{CORE_CONTRACT} KEPT" in output, output


# import-linter reads import statements only: a class path in a string (importlib, a config
# default) would pass it. Generative may name litlab.vision.data, nothing else of vision.
VISION_BEYOND_DATA = re.compile(r"litlab[./]vision[./](?!data\b)\w+")


def test_generative_names_no_vision_module_but_data() -> None:
    files = [
        path
        for path in sorted((REPO_ROOT / "packages" / "generative").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if VISION_BEYOND_DATA.search(line)
    ]

    assert any(path.suffix == ".py" for path in files)
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('"litlab.vision.tasks.classification.ImageClassifier"', True),
        ("importlib.import_module('litlab.vision.models.cnn')", True),
        ("packages/vision/src/litlab/vision/callbacks/classification_report.py", True),
        ("from litlab.vision.data.mnist import MNISTDataModule", False),
        ("a litlab.vision image datamodule", False),
    ],
)
def test_the_scan_tells_vision_data_from_the_rest(text: str, named: bool) -> None:
    assert bool(VISION_BEYOND_DATA.search(text)) is named


LIBRARY_AND_DOMAINS = [
    REPO_ROOT / "packages" / "core" / "src" / "litlab" / "core",
    *(REPO_ROOT / "packages" / name / "src" for name in ("vision", "nlp", "generative")),
]
APP_PATH = re.compile(r"\blitlab[./]app\b")
# The table of class paths that moved (to upgrade the configs and checkpoints of an earlier
# litlab) names where they went; it imports none of them.
NAMES_APP_AS_DATA = {Path("packages/core/src/litlab/core/checkpoints/upgrade.py")}


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *ast.walk(tree)]
    bodies = [n.body for n in nodes if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))]
    return {
        id(body[0].value)
        for body in bodies
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    }


def _app_paths_in_strings(source: str) -> list[str]:
    """String constants (not docstrings) that name litlab.app: an import import-linter misses."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and APP_PATH.search(node.value)
    ]


def test_library_and_domains_name_no_application_module_in_code() -> None:
    files = [path for root in LIBRARY_AND_DOMAINS for path in sorted(root.rglob("*.py"))]
    found = [
        f"{path.relative_to(REPO_ROOT)}: {text!r}"
        for path in files
        if path.relative_to(REPO_ROOT) not in NAMES_APP_AS_DATA
        for text in _app_paths_in_strings(path.read_text())
    ]

    assert len(files) > 100
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ('LOGGER = "litlab.app.tracking.WandbLogger"', True),
        ("importlib.import_module('litlab.app.cli')", True),
        ('"""The command is litlab.app.cli."""\nX = 1', False),
        ('X = "litlab.application"', False),
    ],
)
def test_the_scan_tells_code_from_docstrings(source: str, named: bool) -> None:
    assert bool(_app_paths_in_strings(source)) is named


# Lightning imports torchmetrics, whose BERTScore module imports transformers' top level (tokenizer
# utilities, about 0.7 s) whenever transformers is installed; litlab cannot stop that. What must
# stay out is the model code (transformers.modeling_utils), peft, datasets and litlab's domains.
HELP_PROBE = """\
import sys; from litlab.app.cli import main
try:
    main(['--help'])
except SystemExit:
    pass
bad=[m for m in sys.modules if m.split('.')[0] in ('peft','datasets') \
or m == 'transformers.modeling_utils' \
or m.startswith(('litlab.vision','litlab.nlp','litlab.generative'))]
print(bad)
"""


def help_without_imports(probe: str, cwd: Path, *args: str) -> str:
    """Runs a help probe in a fresh interpreter, checks that the modules it lists on its last
    line were not imported, and gives the help text printed before it."""
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    *help_lines, last = result.stdout.strip().splitlines()
    assert ast.literal_eval(last) == [], result.stderr
    return "\n".join(help_lines)


def test_cli_help_imports_no_domain_package(tmp_path: Path) -> None:
    help_text = help_without_imports(HELP_PROBE, tmp_path)
    for subcommand in ("fit", "validate", "test", "predict"):
        assert re.search(rf"^\s+{subcommand}\s", help_text, re.MULTILINE), help_text


VERB_HELP_PROBE = """\
import sys; from litlab.app.entry_point import main
try:
    main([sys.argv[1], '--help'])
except SystemExit:
    pass
print([m for m in ('torch', 'lightning', 'optuna', 'wandb') if m in sys.modules])
"""


@pytest.mark.parametrize("verb", ["sweep", "sync"])
def test_litlab_verbs_answer_help_without_importing_torch(tmp_path: Path, verb: str) -> None:
    assert f"usage: litlab {verb}" in help_without_imports(VERB_HELP_PROBE, tmp_path, verb)


TOP_LEVEL_HELP_PROBE = """\
import sys; from litlab.app.entry_point import main
main(['--help'])
print([m for m in ('torch', 'lightning') if m in sys.modules])
"""


def test_top_level_help_is_lightning_clis_without_lightning(tmp_path: Path) -> None:
    from litlab.app.entry_point import EXTRA_VERBS, LIGHTNING_VERBS

    help_text = help_without_imports(TOP_LEVEL_HELP_PROBE, tmp_path)
    for verb in (*LIGHTNING_VERBS, *EXTRA_VERBS):
        assert re.search(rf"^\s+(litlab )?{verb}\s", help_text, re.MULTILINE), help_text
    # Word for word what LightningCLI's parser prints (the same width: neither is a terminal).
    assert help_text == help_without_imports(HELP_PROBE, tmp_path)


VERB_HELP_CACHE_PROBE = """\
import sys; from litlab.app.entry_point import main
try:
    main(['fit', '--help'])
except SystemExit:
    pass
print([m for m in ('torch', 'lightning') if m in sys.modules and sys.argv[1] == 'cached'])
"""


def test_verb_help_is_rendered_once_then_read_without_lightning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    rendered = help_without_imports(VERB_HELP_CACHE_PROBE, tmp_path, "rendered")
    cached = help_without_imports(VERB_HELP_CACHE_PROBE, tmp_path, "cached")

    assert "--trainer.max_epochs" in rendered
    assert cached == rendered
