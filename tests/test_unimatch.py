"""UniMatch (``--method unimatch``): its pieces against hand-computed values, resume and a grid."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from als4gan.cli import main
from als4gan.data.encoding import IGNORE_INDEX
from als4gan.data.transforms import TrainAugment
from als4gan.errors import ConfigError
from als4gan.io import read_json, read_jsonl
from als4gan.models import build_segmentation_model
from als4gan.train.config import METHODS, TrainConfig
from als4gan.train.data import UnlabelledImages, WithTruth, collate
from als4gan.train.methods import METHOD_CLASSES, build_method
from als4gan.train.methods.unimatch import (
    UniMatchPasses,
    combined_loss,
    confident_cross_entropy,
    weak_pseudo_labels,
)
from als4gan.train.strong import StrongAugment, adjust_hue, cutmix, cutmix_box, gaussian_blur

LN2 = math.log(2)


# ---------------------------------------------------------------- losses
def test_threshold_masking_counts_valid_pixels_in_the_denominator() -> None:
    logits = torch.zeros(1, 2, 1, 4)  # uniform over 2 classes: CE = ln 2 at every pixel
    labels = torch.tensor([[[0, 1, 0, 1]]])
    confidence = torch.tensor([[[0.96, 0.95, 0.94, 0.99]]])
    valid = torch.tensor([[[True, True, True, False]]])
    # confident and valid: pixels 0 and 1 (>= 0.95); valid: 0, 1, 2 -> 2 ln 2 / 3
    loss = confident_cross_entropy(logits, labels, confidence, valid, 0.95)
    assert loss.item() == pytest.approx(2 * LN2 / 3)
    assert confident_cross_entropy(logits, labels, confidence, valid, 0.999).item() == 0.0
    nothing = torch.zeros_like(valid)
    assert confident_cross_entropy(logits, labels, confidence, nothing, 0.5).item() == 0.0


def test_combined_loss_weights_as_published() -> None:
    one = torch.tensor(1.0)
    total = combined_loss(one, 2 * one, 4 * one, 8 * one)
    assert total.item() == pytest.approx((1 + 0.25 * 2 + 0.25 * 4 + 0.5 * 8) / 2)
    assert combined_loss(one, 2 * one, 4 * one, 8 * one, 0.0, 2.0).item() == pytest.approx(
        (1 + 2 * (0.5 * 2 + 0.5 * 4)) / 2
    )


def test_weak_pseudo_labels_carry_no_gradient() -> None:
    logits_w = torch.tensor([[[[2.0]], [[0.0]]]], requires_grad=True)  # (1, 2, 1, 1)
    confidence, labels = weak_pseudo_labels(logits_w)
    assert not confidence.requires_grad and not labels.requires_grad
    assert labels.item() == 0
    assert confidence.item() == pytest.approx(math.exp(2) / (math.exp(2) + 1))
    logits_s = torch.zeros(1, 2, 1, 1, requires_grad=True)
    loss = confident_cross_entropy(
        logits_s, labels, confidence, torch.ones(1, 1, 1, dtype=torch.bool), 0.5
    )
    loss.backward()
    assert logits_w.grad is None
    assert logits_s.grad is not None and logits_s.grad.abs().sum() > 0


# ---------------------------------------------------------------- CutMix
def test_cutmix_moves_images_labels_confidence_and_validity_together() -> None:
    box = torch.tensor([[[False, True], [False, True]]])
    image = torch.zeros(1, 3, 2, 2)
    other = torch.ones(1, 3, 2, 2)
    mixed = cutmix(image, other, box)
    assert mixed[0, :, :, 1].eq(1).all() and mixed[0, :, :, 0].eq(0).all()
    labels = cutmix(torch.tensor([[[1, 1], [1, 1]]]), torch.tensor([[[2, 3], [4, 5]]]), box)
    assert labels.tolist() == [[[1, 3], [1, 5]]]
    confidence = cutmix(torch.full((1, 2, 2), 0.5), torch.tensor([[[0.9, 0.8], [0.7, 0.6]]]), box)
    assert confidence.tolist() == [[[0.5, pytest.approx(0.8)], [0.5, pytest.approx(0.6)]]]
    # padding of the pasted image comes along: its padded pixels become invalid
    valid = cutmix(
        torch.ones(1, 2, 2, dtype=torch.bool), torch.tensor([[[True, True], [True, False]]]), box
    )
    assert valid.tolist() == [[[True, True], [True, False]]]


def test_cutmix_box_probability_size_and_determinism() -> None:
    never = cutmix_box(32, 32, torch.Generator().manual_seed(0), prob=0.0)
    assert not never.any()
    for seed in range(20):
        box = cutmix_box(32, 32, torch.Generator().manual_seed(seed), prob=1.0)
        again = cutmix_box(32, 32, torch.Generator().manual_seed(seed), prob=1.0)
        assert torch.equal(box, again)
        share = box.float().mean().item()
        assert share <= 0.4 + 1e-6
        if box.any():  # a rectangle
            rows, cols = box.any(dim=1), box.any(dim=0)
            assert box.sum() == rows.sum() * cols.sum()


# ---------------------------------------------------------------- strong augmentation
def test_strong_augment_grayscale_is_luminance() -> None:
    image = torch.tensor([1.0, 0.5, 0.0]).view(3, 1, 1).expand(3, 2, 2)
    gray = StrongAugment(jitter_prob=0.0, grayscale_prob=1.0, blur_prob=0.0)
    out = gray(image[None], torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, 2, 2)
    assert out.flatten().tolist() == pytest.approx([0.299 + 0.5 * 0.587] * 12)


def test_hue_rotation_and_blur_by_hand() -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert adjust_hue(red, 1 / 3).flatten().tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert adjust_hue(red, 0.0).flatten().tolist() == [1.0, 0.0, 0.0]
    flat = torch.full((2, 5, 5), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)
    spot = torch.zeros(1, 9, 9)
    spot[0, 4, 4] = 1.0
    blurred = gaussian_blur(spot, 1.0)
    assert blurred.sum().item() == pytest.approx(1.0)
    weight = math.exp(-0.5)
    assert blurred[0, 4, 3].item() / blurred[0, 4, 4].item() == pytest.approx(weight, rel=1e-5)


def test_strong_augment_is_reproducible_and_keeps_range() -> None:
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    strong = StrongAugment(jitter_prob=1.0, blur_prob=1.0)
    a = strong(images, torch.Generator().manual_seed(5))
    b = strong(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, images)


# ---------------------------------------------------------------- padded pixels, truth masks
def test_truth_masks_follow_the_crop_and_padding_stays_ignored() -> None:
    augment = WithTruth(TrainAugment(24, scale_range=(0.5, 1.5), mirror=True))
    mask = torch.arange(16 * 16).view(16, 16) % 5
    sample = {"image": torch.rand(3, 16, 16), "mask": mask, "truth": mask.clone(), "id": "a"}
    for seed in range(5):
        out = augment(sample, torch.Generator().manual_seed(seed))
        assert torch.equal(out["truth"], out["mask"])  # same geometry, same padding
        assert (out["mask"] == IGNORE_INDEX).any()  # 16 px scaled <= 24: always padded
    batch = collate([out, out])
    assert batch["truth"].shape == (2, 24, 24)
    assert "truth" not in collate([{k: v for k, v in out.items() if k != "truth"}])


def test_unlabelled_images_read_truth_only_when_asked(synthetic_root: Path) -> None:
    from als4gan.data import build_dataset

    dataset = build_dataset("synthetic", str(synthetic_root), "train")
    plain = UnlabelledImages(dataset)[0]
    assert "truth" not in plain and plain["mask"].eq(0).all()
    checked = UnlabelledImages(dataset, with_truth=True)[0]
    assert torch.equal(checked["mask"], plain["mask"])  # the validity map is unchanged
    assert checked["truth"].shape == plain["mask"].shape
    assert (checked["truth"] != IGNORE_INDEX).any()


# ---------------------------------------------------------------- models and registry
@pytest.mark.parametrize(
    ("arch", "backbone"),
    [("deeplabv2", "resnet18"), ("deeplabv3plus", "resnet18"), ("deeplabv3plus", "mobilenet_v2")],
)
def test_encode_decode_is_forward_and_feeds_the_perturbation(arch: str, backbone: str) -> None:
    torch.manual_seed(0)
    model = build_segmentation_model(arch, backbone, num_classes=3, output_stride=16).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.decode(model.encode(x), x.shape[-2:]), model(x))
        passes = UniMatchPasses(model, dropout=0.5)
        outputs = passes(x[:1], x[1:], x[1:], x[:1])
    assert [tuple(o.shape) for o in outputs] == [(1, 3, 32, 32)] * 5
    assert not torch.equal(outputs[1], outputs[2])  # the perturbed stream differs


def test_method_registry_lists_choices_and_refuses_multi_scale() -> None:
    assert set(METHOD_CLASSES) == set(METHODS) == {"s4gan", "supervised", "unimatch"}
    with pytest.raises(ConfigError, match="Choose one of: s4gan, supervised, unimatch"):
        build_method(TrainConfig(method="fixmatch"))
    with pytest.raises(ConfigError, match="multi-scale"):
        build_method(TrainConfig(method="unimatch", multi_scale=True))
    with pytest.raises(ConfigError, match="--threshold-u"):
        TrainConfig(method="unimatch", threshold_u=1.5).validate()


# ---------------------------------------------------------------- training runs
FAST = [
    "--dataset",
    "synthetic",
    "--backbone",
    "resnet18",
    "--crop-size",
    "48",
    "--batch-size",
    "2",
    "--num-workers",
    "0",
    "--method",
    "unimatch",
]


def _records(run: Path) -> list[dict[str, object]]:
    return [
        {k: v for k, v in r.items() if k != "time"}
        for r in read_jsonl(run / "metrics.jsonl")
        if r["kind"] == "train"
    ]


def test_unimatch_logs_its_losses_and_resumes_exactly(synthetic_root: Path, tmp_path: Path) -> None:
    args = [
        *FAST,
        "--labeled-ratio",
        "0.2",
        "--iterations",
        "3",
        "--val-every",
        "0",
        "--threshold-u",
        "0.3",  # some confident pixels early on, so the unsupervised losses are not all 0
        "--grad-accum",
        "2",
    ]
    straight = tmp_path / "straight"
    assert main(["train", "--root", str(synthetic_root), "--out", str(straight), *args]) == 0
    records = _records(straight)
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in ("loss_ce", "loss_u_s1", "loss_u_s2", "loss_u_fp", "loss_total"):
        assert all(math.isfinite(float(r[key])) for r in records)  # type: ignore[arg-type]
    assert any(float(r["loss_u_fp"]) > 0 for r in records)  # type: ignore[arg-type]
    assert all(0 <= float(r["pseudo_coverage"]) <= 1 for r in records)  # type: ignore[arg-type]
    assert all(0 <= float(r["pseudo_accuracy_all"]) <= 1 for r in records)  # type: ignore[arg-type]
    config = yaml.safe_load((straight / "config.yaml").read_text())
    assert config["method"] == "unimatch" and config["threshold_u"] == 0.3
    assert config["fp_dropout"] == 0.5 and config["cutmix_prob"] == 0.5

    interrupted = tmp_path / "interrupted"
    stop = ["--stop-after", "1"]
    run = ["train", "--root", str(synthetic_root), "--out", str(interrupted), *args, *stop]
    assert main(run) == 0
    assert [r["step"] for r in _records(interrupted)] == [1]
    assert main(["train", "--out", str(interrupted), "--resume"]) == 0
    assert _records(interrupted) == records


def test_unimatch_in_a_tiny_run_grid(synthetic_root: Path, tmp_path: Path) -> None:
    config = {
        "name": "tiny",
        "out": str(tmp_path / "exp"),
        "dataset": {"name": "synthetic", "root": str(synthetic_root)},
        "grid": {
            "strategies": ["random"],
            "ratios": [0.2],
            "seeds": [0],
            "methods": ["supervised", "unimatch"],
            "reference": False,
        },
        "select": {"model": "resnet18", "image_size": 48, "epochs": 1, "num_workers": 0},
        "train": {
            "backbone": "resnet18",
            "output_stride": 16,
            "crop_size": 48,
            "batch_size": 2,
            "iterations": 2,
            "val_every": 2,
            "val_window": 0,
            "num_workers": 0,
        },
        "evaluate": {"split": "test"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    results = read_json(tmp_path / "exp" / "results.json")
    methods = sorted(cell["method"] for cell in results["cells"])
    assert methods == ["supervised", "unimatch"]
    run = tmp_path / "exp" / "cells" / "random_r0.2_s0_unimatch"
    assert yaml.safe_load((run / "config.yaml").read_text())["method"] == "unimatch"
    assert "random_r0.2_s0_unimatch" in (tmp_path / "exp" / "report.html").read_text()
    # the run report plots UniMatch's losses and pseudo-label shares
    from als4gan.draw import plots
    from als4gan.report import html
    from als4gan.report.runs import load_run

    info = load_run(run)
    keys = {"loss_u_s1", "loss_u_s2", "loss_u_fp", "pseudo_coverage", "pseudo_accuracy_all"}
    assert keys <= set(plots.LOSS_LABELS) and all(keys <= set(r) for r in info.train)
    assert "training losses" in html.section_curves(info)


def test_demo_methods_option_adds_unimatch(tmp_path: Path) -> None:
    from als4gan.cli import build_parser
    from als4gan.commands.demo import demo_experiment
    from als4gan.experiment import expand_grid, parse_experiment

    args = build_parser().parse_args(["demo", "--methods", "supervised", "unimatch"])
    assert args.methods == ["supervised", "unimatch"]
    config = demo_experiment(str(tmp_path), 1, "none", args.methods)
    spec = parse_experiment(config, "demo.yaml", tmp_path)
    assert spec.grid.methods == ["supervised", "unimatch"]
    assert len(expand_grid(spec.grid)) == 3 * 2 + 1
    assert demo_experiment(str(tmp_path))["grid"]["methods"] == ["s4gan", "supervised"]
