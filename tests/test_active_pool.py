from pathlib import Path

import pytest

from als4gan.active.pool import PoolState
from als4gan.errors import DataError


def test_state_round_trip(tmp_path: Path) -> None:
    pool = PoolState([f"id{i}" for i in range(6)])
    pool.add_round(["id3", "id0"], {"kind": "initial"})
    pool.add_round(["id5"], {"kind": "query", "scores": [0.5]})
    assert pool.completed_rounds == 2
    assert pool.unlabelled() == ["id1", "id2", "id4"]
    assert pool.labelled_in_pool_order() == ["id0", "id3", "id5"]
    pool.save(tmp_path, note="extra")
    saved = PoolState.read(tmp_path)
    assert saved is not None and saved["note"] == "extra"
    restored = PoolState([f"id{i}" for i in range(6)])
    restored.load_state_dict(saved)
    assert restored.labelled == ["id3", "id0", "id5"]
    assert restored.rounds[1] == {"kind": "query", "scores": [0.5], "round": 1, "ids": ["id5"]}


def test_state_refuses_duplicates_and_unknown_ids() -> None:
    pool = PoolState(["a", "b", "c"])
    pool.add_round(["a"], {})
    with pytest.raises(ValueError, match="already labelled"):
        pool.add_round(["a"], {})
    with pytest.raises(ValueError, match="not in the pool"):
        pool.add_round(["z"], {})
    with pytest.raises(ValueError, match="twice"):
        pool.add_round(["b", "b"], {})
    with pytest.raises(DataError, match="more than once"):
        PoolState(["a", "b", "a"])


def test_state_of_another_pool_is_refused(tmp_path: Path) -> None:
    pool = PoolState(["a", "b", "c"])
    pool.add_round(["a"], {})
    with pytest.raises(DataError, match="pool of 3 images"):
        PoolState(["a", "b"]).load_state_dict(pool.state_dict())
    assert PoolState.read(tmp_path) is None
