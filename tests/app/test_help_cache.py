"""`litlab VERB --help` is rendered by the full parser once per input, then read from the cache;
any change to a file it names renders it again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from litlab.app import help_cache


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Parser:
    """Stands in for the full parser: prints a help built from the config file, and exits."""

    def __init__(self, config: Path, code: int = 0) -> None:
        self.config, self.code, self.calls = config, code, 0

    def __call__(self) -> None:
        self.calls += 1
        sys.stdout.write(f"usage: litlab fit ... lr {self.config.read_text()}\n")
        sys.exit(self.code)


def show(argv: list[str], parser: Parser) -> int:
    with pytest.raises(SystemExit) as exit_info:
        help_cache.show_help(argv, parser)
    return exit_info.value.code or 0


def test_second_call_prints_the_same_without_the_parser(tmp_path, capsys, cache_home):
    config = tmp_path / "a.yaml"
    config.write_text("0.1")
    parser = Parser(config)
    argv = ["fit", "-c", str(config), "--help"]

    assert show(argv, parser) == 0
    first = capsys.readouterr().out
    assert show(argv, parser) == 0

    assert capsys.readouterr().out == first == "usage: litlab fit ... lr 0.1\n"
    assert parser.calls == 1
    assert [path.suffix for path in (cache_home / "litlab" / "help").iterdir()] == [".txt"]


@pytest.mark.parametrize("option", ["-c", "--config="])
def test_a_changed_config_file_is_rendered_again(tmp_path, capsys, option):
    config = tmp_path / "a.yaml"
    config.write_text("0.1")
    parser = Parser(config)
    argv = ["fit", *([option, str(config)] if option == "-c" else [option + str(config)]), "-h"]

    show(argv, parser)
    config.write_text("0.2")
    show(argv, parser)

    assert capsys.readouterr().out.splitlines()[-1] == "usage: litlab fit ... lr 0.2"
    assert parser.calls == 2


def test_another_command_line_is_rendered_again(tmp_path):
    config = tmp_path / "a.yaml"
    config.write_text("0.1")
    parser = Parser(config)

    show(["fit", "--help"], parser)
    show(["test", "--help"], parser)

    assert parser.calls == 2


def test_an_error_is_not_cached(tmp_path, capsys):
    config = tmp_path / "a.yaml"
    config.write_text("0.1")
    parser = Parser(config, code=2)

    assert show(["fit", "--help"], parser) == 2
    assert show(["fit", "--help"], parser) == 2

    assert parser.calls == 2
    assert capsys.readouterr().out.count("usage:") == 2


def test_an_unwritable_cache_still_prints_the_help(tmp_path, capsys, cache_home):
    cache_home.write_text("a file where the cache folder would be")
    config = tmp_path / "a.yaml"
    config.write_text("0.1")

    assert show(["fit", "--help"], Parser(config)) == 0
    assert capsys.readouterr().out == "usage: litlab fit ... lr 0.1\n"
