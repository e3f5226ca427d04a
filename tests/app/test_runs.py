import pytest

from litlab.app.runs import new_run_dir, new_run_id
from litlab.core.checkpoints.run_lookup import find_checkpoint
from litlab.core.errors import LitlabError


def test_run_dir_layout(tmp_path):
    run_id = new_run_id()
    run_dir = new_run_dir(tmp_path, "mnist_mlp", run_id)
    assert run_dir.parent == tmp_path / "mnist_mlp"
    assert run_dir.name.endswith(f"-{run_id}")
    assert len(run_id) == 8
    assert new_run_id() != run_id


def test_find_checkpoint_takes_newest_run_that_has_it(tmp_path):
    for run, files in {
        "20260101-000000-aaaaaaaa": ["best", "last"],
        "20260102-000000-bbbbbbbb": ["best", "last"],
        "20260103-000000-cccccccc": ["last"],  # still running: no best yet
    }.items():
        (tmp_path / "exp" / run / "checkpoints").mkdir(parents=True)
        for name in files:
            (tmp_path / "exp" / run / "checkpoints" / f"{name}.ckpt").write_bytes(b"")
    assert find_checkpoint(tmp_path, "exp", "best").parts[-3] == "20260102-000000-bbbbbbbb"
    assert find_checkpoint(tmp_path, "exp", "last").parts[-3] == "20260103-000000-cccccccc"


def test_find_checkpoint_explains_when_there_is_none(tmp_path):
    with pytest.raises(LitlabError, match=r"no 'best' checkpoint.*litlab fit"):
        find_checkpoint(tmp_path, "never_trained", "best")
