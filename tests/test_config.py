"""Config values out of range and config files that are no YAML text (issue 27): each is
one ConfigError naming the key, and one line from the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recllm.cli import main
from recllm.config import apply_overrides, from_dict, load_yaml
from recllm.data.splits import SplitConfig
from recllm.errors import ConfigError
from recllm.recipes.explain import ExplainerTrainConfig
from recllm.recipes.router import RouterTrainConfig
from recllm.recipes.train import TrainConfig, TrainerConfig


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.grad_clip=.nan", "trainer.grad_clip: expected float (finite), got nan"),
        ("trainer.grad_clip=nan", "trainer.grad_clip: expected float (finite), got 'nan'"),
        ("trainer.lr=.inf", "trainer.lr: expected float (finite)"),
        ("trainer.weight_decay=-.inf", "trainer.weight_decay: expected float (finite)"),
        ("trainer.weight_decay=-0.1", "weight_decay must be a finite number >= 0, got -0.1"),
        ("trainer.seed=-1", "seed must be in 0..4294967295, got -1"),
        ("trainer.seed=4294967296", "seed must be in 0..4294967295, got 4294967296"),
        ("trainer.num_threads=0", "num_threads must be >= 1"),
        ("trainer.num_threads=-2", "num_threads must be >= 1"),
        ("data.split.seed=-5", "data.split.seed must be in 0..4294967295, got -5"),
        ("generation.seed=-1", "generation.seed must be in"),
    ],
)
def test_out_of_range_settings_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(TrainConfig, apply_overrides({}, [override]))
    assert message in str(info.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: TrainerConfig(lr=float("nan")),
        lambda: TrainerConfig(grad_clip=float("nan")),
        lambda: TrainerConfig(weight_decay=float("inf")),
        lambda: TrainerConfig(backbone_lr=float("nan")),
        lambda: TrainerConfig(seed=-1),
        lambda: SplitConfig(seed=-1),
        lambda: RouterTrainConfig(lr=float("nan")),
        lambda: RouterTrainConfig(num_threads=0),
        lambda: ExplainerTrainConfig(seed=-3),
        lambda: ExplainerTrainConfig(lr=float("inf")),
    ],
)
def test_configs_built_in_code_check_ranges_too(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        build()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not a YAML text file (binary"),
        (b"trainer:\n  lr: 1\x00\x01\n", "is not valid YAML"),
        (b"- just\n- a list\n", "must hold a mapping"),
    ],
)
def test_a_config_file_that_is_no_yaml_mapping_is_one_line(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_yaml(path)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
