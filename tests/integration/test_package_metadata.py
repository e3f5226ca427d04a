"""Each litlab distribution says what it is: it declares every third-party module its code
imports and its litlab siblings at its own version, ships the repository's Apache-2.0 LICENSE
and a py.typed marker in each import package, and its ``__version__`` is the metadata's.

Fast and offline (no wheel build but one, of litlab-core), so .ci/lowest_direct runs it at the
lowest versions too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[2]

# package folder -> the import packages its wheel holds.
IMPORT_PACKAGES = {
    "core": ["litlab.core", "litlab.app"],
    "vision": ["litlab.vision"],
    "nlp": ["litlab.nlp"],
    "generative": ["litlab.generative"],
}
# litlab.<first part> -> the distribution that ships it.
LITLAB_DISTRIBUTIONS = {
    "core": "litlab-core",
    "app": "litlab-core",
    "vision": "litlab-vision",
    "nlp": "litlab-nlp",
    "generative": "litlab-generative",
}


def _project(package: str) -> dict:
    return tomllib.loads((REPO_ROOT / "packages" / package / "pyproject.toml").read_text())[
        "project"
    ]


def _requirements(project: dict) -> list[Requirement]:
    """The dependencies and every extra's (an optional import is declared in an extra)."""
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def _imported_modules(package: str) -> dict[str, set[str]]:
    """Every absolute import in the package's source: the imported module's full name -> the
    files that import it (``from a.b import c`` counts as ``a.b``)."""
    found: dict[str, set[str]] = {}
    src = REPO_ROOT / "packages" / package / "src"
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(src)))
    return found


@pytest.mark.parametrize("package", IMPORT_PACKAGES)
def test_every_imported_module_is_declared(package: str) -> None:
    """A third-party module the code imports (at any depth, lazily or not) maps to a
    distribution that the package's pyproject.toml names, not one it only gets through a
    sibling; a litlab module of another distribution is a declared sibling."""
    own = LITLAB_DISTRIBUTIONS[IMPORT_PACKAGES[package][0].split(".")[1]]
    declared = {canonicalize_name(req.name) for req in _requirements(_project(package))}
    module_to_distributions = importlib.metadata.packages_distributions()

    undeclared = []
    for module, files in _imported_modules(package).items():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top == "litlab":
            wanted = {LITLAB_DISTRIBUTIONS[module.split(".")[1]]}
            if own in wanted:
                continue
        else:
            wanted = set(module_to_distributions.get(top, []))
            assert wanted, f"{module} (imported by {sorted(files)}) is not installed here"
        if not {canonicalize_name(name) for name in wanted} & declared:
            undeclared.append(f"{module} ({' or '.join(sorted(wanted))}) in {sorted(files)}")
    assert not undeclared, f"litlab-{package} imports what it does not declare:\n" + "\n".join(
        undeclared
    )


@pytest.mark.parametrize("package", ["vision", "nlp", "generative"])
def test_siblings_are_pinned_to_their_own_version(package: str) -> None:
    """litlab-vision 0.1.0 needs litlab-core 0.1.0, not any litlab-core: the siblings are
    released together."""
    siblings = {
        canonicalize_name(req.name): req
        for req in _requirements(_project(package))
        if req.name.startswith("litlab-")
    }
    assert siblings
    for name, req in siblings.items():
        version = _project(name.removeprefix("litlab-"))["version"]
        assert str(req.specifier) == f"=={version}", f"litlab-{package}: {req}"


@pytest.mark.parametrize("package", IMPORT_PACKAGES)
def test_license_is_the_declared_one_and_ships(package: str) -> None:
    project = _project(package)
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    root_license = (REPO_ROOT / "LICENSE").read_text()
    assert root_license.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in root_license
    assert (REPO_ROOT / "packages" / package / "LICENSE").read_text() == root_license


@pytest.mark.parametrize(
    "module", [module for modules in IMPORT_PACKAGES.values() for module in modules]
)
def test_version_is_the_distribution_metadata(module: str) -> None:
    distribution = LITLAB_DISTRIBUTIONS[module.split(".")[1]]
    imported = importlib.import_module(module)
    assert imported.__version__ == importlib.metadata.version(distribution)
    assert imported.__version__ == _project(distribution.removeprefix("litlab-"))["version"]
    assert (Path(imported.__file__).parent / "py.typed").is_file()


def test_core_wheel_carries_license_and_py_typed(tmp_path: Path) -> None:
    """hatchling puts the LICENSE into the wheel's metadata and the py.typed markers beside the
    code (checked on litlab-core, which holds two import packages; the others are built alike)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    subprocess.run(
        [uv, "build", "--wheel", "--no-sources", "--out-dir", str(tmp_path), "packages/core"],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    (wheel,) = tmp_path.glob("litlab_core-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
    assert "litlab/core/py.typed" in names
    assert "litlab/app/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata
