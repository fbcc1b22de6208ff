from pathlib import Path

import pytest
import torch

from als4gan.checkpoint import build_model_from_checkpoint
from als4gan.errors import CheckpointError
from als4gan.models import SEGMENTATION_MODELS, build_segmentation_model
from als4gan.models.deeplabv3plus import DeepLabV3Plus
from als4gan.models.resnet import ResNet
from als4gan.models.weights import resolve_pretrained


@pytest.mark.parametrize("output_stride", [8, 16])
def test_deeplabv3plus_shapes(output_stride: int) -> None:
    model = build_segmentation_model(
        "deeplabv3plus", "resnet18", num_classes=5, output_stride=output_stride
    )
    assert isinstance(model, DeepLabV3Plus)
    features = model.backbone.forward_features(model.normalize(torch.rand(2, 3, 64, 48)))
    assert features["out"].shape[-2:] == (64 // output_stride, 48 // output_stride)
    assert features["low"].shape[-2:] == (16, 12)
    assert model(torch.rand(2, 3, 64, 48)).shape == (2, 5, 64, 48)


def test_deeplabv3plus_trains_with_micro_batches_of_one() -> None:
    # image pooling has no BatchNorm, so a single image per step works in train mode
    model = build_segmentation_model("deeplabv3plus", "resnet18", num_classes=3).train()
    model(torch.rand(1, 3, 32, 32)).sum().backward()


def test_deeplabv3plus_head_groups_cover_the_head_once() -> None:
    model = build_segmentation_model("deeplabv3plus", "resnet18", num_classes=3)
    weights, biases = model.head_parameters()
    head = {id(p) for module in model.head_modules() for p in module.parameters()}
    assert {id(p) for p in weights} | {id(p) for p in biases} == head
    assert not {id(p) for p in weights} & {id(p) for p in biases}
    assert all(p.ndim > 1 for p in weights) and all(p.ndim == 1 for p in biases)
    backbone = {id(p) for p in model.backbone_parameters()}
    assert not backbone & head


def test_registry_lists_both_architectures() -> None:
    assert set(SEGMENTATION_MODELS) == {"deeplabv2", "deeplabv3plus"}


def test_deeplabv3plus_rebuilds_from_a_checkpoint_spec() -> None:
    spec = {
        "arch": "deeplabv3plus",
        "backbone": "resnet18",
        "num_classes": 4,
        "in_channels": 3,
        "output_stride": 16,
    }
    source = build_segmentation_model(**spec)
    rebuilt = build_model_from_checkpoint({"model_spec": spec, "model": source.state_dict()})
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(rebuilt(x), source.eval()(x))


def test_deeplabv2_aspp_sums_all_four_branches() -> None:
    # (the reference code returned after the second branch)
    model = build_segmentation_model("deeplabv2", "resnet18", num_classes=3).eval()
    features = torch.rand(1, model.backbone.out_channels, 5, 5)
    expected = sum(branch(features) for branch in model.classifier.branches)
    assert torch.allclose(model.classifier(features), expected)


def test_pretrained_accepts_a_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    source = build_segmentation_model("deeplabv2", "resnet18", num_classes=3)
    torch.save({"model": source.state_dict()}, run / "checkpoints" / "latest.pt")
    assert resolve_pretrained(str(run), "resnet18") == run / "checkpoints" / "latest.pt"
    model = build_segmentation_model(
        "deeplabv3plus", "resnet18", num_classes=5, pretrained=str(run)
    )
    assert torch.equal(
        model.backbone.layer2[0].conv1.weight, source.backbone.layer2[0].conv1.weight
    )
    with pytest.raises(CheckpointError, match="without checkpoints"):
        resolve_pretrained(str(tmp_path), "resnet18")


def test_imagenet_file_loads_into_deeplabv3plus(tmp_path: Path) -> None:
    imagenet = ResNet("resnet18")
    torch.save(imagenet.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    model = build_segmentation_model(
        "deeplabv3plus", "resnet18", pretrained=str(tmp_path / "resnet18-f37072fd.pth")
    )
    assert torch.equal(model.backbone.conv1.weight, imagenet.conv1.weight)
