import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from als4gan.config import (
    add_config_arguments,
    config_from_dict,
    config_to_dict,
    option,
    resolve_config,
)
from als4gan.errors import ConfigError


@dataclass
class ExampleConfig:
    lr: float = option(2.5e-4, "learning rate")
    steps: int = option(10, "iterations")
    mode: str = option("s4gan", "method", choices=("s4gan", "supervised"))
    mirror: bool = option(True, "random mirror")
    scale: tuple[float, float] = option((0.5, 1.5), "scale range")
    rates: list[int] = option([6, 12], "ASPP rates")
    checkpoint: str | None = option(None, "optional file")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_config_arguments(parser, ExampleConfig)
    return parser.parse_args(argv)


def test_defaults_file_and_flags_merge_in_priority_order(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("lr: 0.1\nsteps: 5\nscale: [0.8, 1.2]\n")
    args = _parse(
        ["--config", str(config_file), "--steps", "7", "--no-mirror", "--rates", "1", "2"]
    )
    config = resolve_config(ExampleConfig, args, args.config)
    assert config.lr == 0.1  # from the file
    assert config.steps == 7  # flag beats file
    assert config.mirror is False
    assert config.scale == (0.8, 1.2)
    assert config.rates == [1, 2]
    assert config.mode == "s4gan"  # default
    assert config_to_dict(config)["scale"] == [0.8, 1.2]


def test_unknown_key_lists_valid_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown option.*lrr.*Valid options: checkpoint"):
        config_from_dict(ExampleConfig, {"lrr": 1})


def test_bad_choice_and_type_are_rejected() -> None:
    with pytest.raises(ConfigError, match="must be one of s4gan, supervised"):
        config_from_dict(ExampleConfig, {"mode": "gan"})
    with pytest.raises(ConfigError, match="invalid value"):
        config_from_dict(ExampleConfig, {"steps": "many"})


def test_none_flag_for_optional() -> None:
    args = _parse(["--checkpoint", "none"])
    assert resolve_config(ExampleConfig, args).checkpoint is None
