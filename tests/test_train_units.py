from pathlib import Path

import numpy as np
import pytest
import torch

from als4gan.errors import CheckpointError, ConfigError, DataError, DatasetNotFoundError
from als4gan.models import build_segmentation_model
from als4gan.train.config import TrainConfig, labelled_budget
from als4gan.train.data import UnlabelledImages, resolve_labelled_split, selection_file
from als4gan.train.samplers import InfiniteSeededSampler
from als4gan.train.schedules import PolyLR, build_generator_optimizer, poly_factor
from als4gan.train.state import capture_rng_state, restore_rng_state
from als4gan.train.trainer import backbone_batchnorms, batchnorm_frozen, build_generator


def test_sampler_epochs_are_permutations_and_seeded() -> None:
    sampler = InfiniteSeededSampler(7, 3, seed=5, stream="labelled")
    items = [sampler.item(k) for k in range(21)]
    for epoch in range(3):
        assert sorted(index for index, _ in items[epoch * 7 : (epoch + 1) * 7]) == list(range(7))
    assert len({seed for _, seed in items}) == 21  # every item has its own augmentation seed
    again = InfiniteSeededSampler(7, 3, seed=5, stream="labelled")
    assert [again.item(k) for k in range(21)] == items
    other = InfiniteSeededSampler(7, 3, seed=6, stream="labelled")
    assert [other.item(k) for k in range(21)] != items
    stream = InfiniteSeededSampler(7, 3, seed=5, stream="unlabelled")
    assert [stream.item(k) for k in range(21)] != items


def test_sampler_shards_partition_the_global_batch() -> None:
    world, accumulation, batch = 2, 2, 8
    shards = [
        InfiniteSeededSampler(
            10, batch, 1, "u", rank=rank, world_size=world, accumulation=accumulation
        )
        for rank in range(world)
    ]
    for iteration in range(3):
        pieces = [
            item
            for step in range(accumulation)
            for sampler in shards
            for item in sampler.micro_batch(iteration, step)
        ]
        assert pieces == shards[0].global_batch(iteration)
    with pytest.raises(ValueError, match="does not split"):
        InfiniteSeededSampler(10, 6, 1, "u", world_size=4)


def test_sampler_resume_continues_the_same_sequence() -> None:
    sampler = InfiniteSeededSampler(5, 2, seed=3, stream="labelled", accumulation=2)
    iterator = iter(sampler)
    full = [next(iterator) for _ in range(8)]  # 4 iterations x 2 micro-batches
    resumed = InfiniteSeededSampler(5, 2, seed=3, stream="labelled", accumulation=2)
    sampler.position = 2
    resumed.load_state_dict(sampler.state_dict())
    iterator = iter(resumed)
    assert [next(iterator) for _ in range(4)] == full[4:]
    mismatch = InfiniteSeededSampler(6, 2, seed=3, stream="labelled")
    with pytest.raises(CheckpointError, match="num_samples"):
        mismatch.load_state_dict(sampler.state_dict())


def test_poly_schedule_and_parameter_groups_use_the_lr_flag() -> None:
    model = build_segmentation_model("deeplabv2", "resnet18", num_classes=3)
    config = TrainConfig(lr=1e-3, iterations=10)
    optimizer = build_generator_optimizer(model, config)
    lrs = [group["lr"] for group in optimizer.param_groups]
    decays = [group["weight_decay"] for group in optimizer.param_groups]
    assert lrs == pytest.approx([1e-3, 1e-2, 2e-2])  # backbone, ASPP weights x10, biases x20
    assert decays == [5e-4, 5e-4, 0.0]
    sizes = [len(group["params"]) for group in optimizer.param_groups]
    assert sizes[1] == sizes[2] == 4  # four ASPP branches
    scheduler = PolyLR(optimizer, total=10, power=0.9)
    for _ in range(5):
        scheduler.step()
    assert scheduler.get_last_lr()[0] == pytest.approx(1e-3 * 0.5**0.9)
    state = scheduler.state_dict()
    other = PolyLR(build_generator_optimizer(model, config), total=10, power=0.9)
    other.load_state_dict(state)
    assert other.get_last_lr() == scheduler.get_last_lr()
    assert poly_factor(10, 10, 0.9) == 0.0


def test_frozen_batchnorm_is_resolved_from_pretrained() -> None:
    assert not batchnorm_frozen(TrainConfig())
    assert batchnorm_frozen(TrainConfig(pretrained="weights.pth"))
    assert batchnorm_frozen(TrainConfig(freeze_bn="on"))
    assert not batchnorm_frozen(TrainConfig(pretrained="imagenet", freeze_bn="off"))
    model, spec = build_generator(TrainConfig(backbone="resnet18", freeze_bn="on"), 4, 3)
    assert spec == {
        "arch": "deeplabv2",
        "backbone": "resnet18",
        "num_classes": 4,
        "in_channels": 3,
        "output_stride": 8,
        "multi_scale": False,
    }
    assert all(not p.requires_grad for bn in backbone_batchnorms(model) for p in bn.parameters())
    optimizer = build_generator_optimizer(model, TrainConfig(backbone="resnet18"))
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert all(id(p) not in optimised for p in backbone_batchnorms(model)[0].parameters())


def test_generator_initialisation_is_seeded_without_touching_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, _ = build_generator(TrainConfig(backbone="resnet18", seed=4), 3, 3)
    assert torch.equal(torch.get_rng_state(), before)
    b, _ = build_generator(TrainConfig(backbone="resnet18", seed=4), 3, 3)
    c, _ = build_generator(TrainConfig(backbone="resnet18", seed=5), 3, 3)
    assert torch.equal(a.backbone.conv1.weight, b.backbone.conv1.weight)
    assert not torch.equal(a.backbone.conv1.weight, c.backbone.conv1.weight)


def test_rng_state_round_trips_as_plain_data(tmp_path: Path) -> None:
    state = capture_rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3))  # noqa: NPY002 - global state under test
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])  # noqa: NPY002


@pytest.mark.parametrize(
    ("ratio", "count", "budget"), [(0.05, 100, 5), (0.07, 100, 7), (0.02, 22, 1), (0.125, 9, 2)]
)
def test_labelled_budget_is_ceil(ratio: float, count: int, budget: int) -> None:
    assert labelled_budget(ratio, count) == budget


def test_random_labelled_set_has_budget_size_and_depends_on_seed(tmp_path: Path) -> None:
    ids = [f"img{i:03d}" for i in range(40)]
    first = resolve_labelled_split(TrainConfig(labeled_ratio=0.05, seed=1), ids)
    again = resolve_labelled_split(TrainConfig(labeled_ratio=0.05, seed=1), ids)
    other = resolve_labelled_split(TrainConfig(labeled_ratio=0.05, seed=2), ids)
    assert len(first.labelled) == 2  # ceil(0.05 x 40)
    assert first == again
    assert first.labelled != other.labelled
    assert sorted(first.labelled + first.unlabelled) == ids


def test_selection_folder_file_and_errors(tmp_path: Path) -> None:
    ids = ["a", "b", "c", "d"]
    run = tmp_path / "run"
    (run / "selection").mkdir(parents=True)
    (run / "selection" / "labeled.txt").write_text("c\na\n")
    assert selection_file(run / "selection") == run / "selection" / "labeled.txt"
    assert selection_file(run) == run / "selection" / "labeled.txt"
    split = resolve_labelled_split(TrainConfig(selection=str(run / "selection")), ids)
    assert split.labelled == ["c", "a"]
    assert split.unlabelled == ["b", "d"]
    # implicit: the select stage ran in the same run folder
    assert resolve_labelled_split(TrainConfig(), ids, run).labelled == ["c", "a"]
    # a resumed run keeps the ids it started with, whatever the options say now
    (run / "train_labeled.txt").write_text("d\n")
    resumed = resolve_labelled_split(
        TrainConfig(labeled_ratio=0.5), ids, run, run / "train_labeled.txt"
    )
    assert resumed.labelled == ["d"]
    with pytest.raises(ConfigError, match="--labeled-ratio"):
        resolve_labelled_split(TrainConfig(), ids, tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match=r"labeled\.txt"):
        selection_file(tmp_path)
    (tmp_path / "bad.txt").write_text("a\nzzz\n")
    with pytest.raises(DataError, match="zzz"):
        resolve_labelled_split(TrainConfig(selection=str(tmp_path / "bad.txt")), ids)


def test_config_validation_messages() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        TrainConfig(batch_size=5, grad_accum=2).validate()
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(selection="x", labeled_ratio=0.1).validate()
    with pytest.raises(ConfigError, match="multi-scale"):
        TrainConfig(arch="deeplabv3plus", multi_scale=True).validate()
    TrainConfig().validate()


def test_unlabelled_images_never_read_masks(synthetic_root: Path) -> None:
    from als4gan.data import build_dataset

    dataset = build_dataset("synthetic", synthetic_root, "train")

    def refuse(sample_id: str) -> None:
        raise AssertionError("the unlabelled stream read a mask")

    dataset.load_mask = refuse  # type: ignore[method-assign]
    sample = UnlabelledImages(dataset)[0]
    assert sample["image"].shape[0] == 3
    assert not sample["mask"].any()


def test_metrics_log_and_truncation(tmp_path: Path) -> None:
    from als4gan.io import read_jsonl
    from als4gan.train.records import MetricsLog, truncate_records

    log = MetricsLog(tmp_path, "off")
    scalars: list[tuple[str, float, int]] = []

    class Writer:
        def add_scalar(self, tag: str, value: float, step: int) -> None:
            scalars.append((tag, value, step))

        def close(self) -> None:
            pass

    log.writer = Writer()
    for step in (1, 2, 3):
        log.write({"kind": "train", "step": step, "loss_ce": 1.0 / step, "time": 0.1})
    log.write(
        {
            "kind": "val",
            "step": 3,
            "miou": 0.5,
            "per_class_iou": [0.4, None],
            "class_names": ["a", "b"],
        }
    )
    log.close()
    assert ("train/loss_ce", 0.5, 2) in scalars
    assert ("val/iou_a", 0.4, 3) in scalars and not any(t == "val/iou_b" for t, _, _ in scalars)
    path = tmp_path / "metrics.jsonl"
    with open(path, "a") as handle:
        handle.write('{"kind": "train", "st')  # a line cut by a crash
    assert truncate_records(path, 2) == 3  # step-3 train and val records, and the broken line
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_tensorboard_on_without_the_package_is_a_clear_error() -> None:
    from als4gan.train.records import check_tensorboard, tensorboard_available

    assert check_tensorboard("off") is False
    if tensorboard_available():
        assert check_tensorboard("on") is True
    else:
        assert check_tensorboard("auto") is False
        with pytest.raises(ConfigError, match=r"pip install 'als4gan\[tensorboard\]'"):
            check_tensorboard("on")


def test_random_budget_equals_active_selection_budget() -> None:
    # SPEC defect 8: random and active labelled sets must have the same size
    budget_module = pytest.importorskip("als4gan.active.budget")
    for count in (9, 22, 100, 179, 1679):
        for ratio in (0.02, 0.05, 0.07, 0.1, 0.125, 0.3, 1.0):
            plan = budget_module.plan_budget(count, labeled_ratio=ratio)
            assert labelled_budget(ratio, count) == plan.budget, (ratio, count)
