"""litlab.core.seeding: the run's seed and the seeds every domain derives from it."""

import pytest

from litlab.core.seeding import GLOBAL_SEED_ENV_VAR, derive_seed, run_seed


def test_run_seed_is_what_seed_everything_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GLOBAL_SEED_ENV_VAR, "1234")
    assert run_seed() == 1234
    monkeypatch.delenv(GLOBAL_SEED_ENV_VAR)
    assert run_seed() == 0


def test_derived_seeds_stay_the_ones_saved_runs_were_drawn_with() -> None:
    # Training orders, augmentation and samples of saved runs were drawn from these values: a
    # change would make a resumed run draw different ones.
    assert derive_seed(42, 0) == 127677007807210305
    assert derive_seed(-1) == 1623352975185328750


def test_neighbouring_seeds_and_epochs_do_not_collide() -> None:
    assert derive_seed(1, 0) != derive_seed(0, 1)
    assert all(0 <= derive_seed(seed, 7) < 2**63 for seed in range(100))
