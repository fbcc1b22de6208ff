"""Shared fixtures: tiny generated datasets, quiet progress bars, paths to optional real data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("ALS4GAN_NO_PROGRESS", "1")
# Several tests start subprocesses (torchrun, CLI runs) that share the 2 CPU cores with pytest.
# OpenMP threads that busy-wait for each other then slow a step down by an order of magnitude;
# passive waiting keeps oversubscribed runs fast. Set before torch is imported anywhere.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
# The sample-check cache of train/select goes to a temporary folder, not the user's ~/.cache.
os.environ.setdefault(
    "ALS4GAN_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"als4gan-test-cache-{os.getuid()}")
)

#: Real DeepGlobe samples beside the repository (absent in a user's clone); a clone elsewhere
#: points ALS4GAN_SHARED_DATA at them.
SHARED_DATA = Path(
    os.environ.get("ALS4GAN_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny prepared synthetic dataset: 30 scenes of 64 px (train 22 / val 4 / test 4)."""
    from als4gan.data.synthetic import SyntheticConfig, write_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic(
        root, SyntheticConfig(num_images=30, image_size=64, seed=3), show_progress=False
    )
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests using it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data not available at {SHARED_DATA} (set ALS4GAN_SHARED_DATA to its folder)"
        )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def isolated_weights_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh, empty weights cache per test, no downloads, and never the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("weights")
    monkeypatch.setenv("ALS4GAN_WEIGHTS_DIR", str(folder / "als4gan"))
    monkeypatch.setenv("TORCH_HOME", str(folder / "torch"))
    monkeypatch.setenv("ALS4GAN_OFFLINE", "1")
    return folder / "als4gan"
