from pathlib import Path

import pytest
import torch

from als4gan.errors import CheckpointError, ConfigError
from als4gan.models import (
    S4GANDiscriminator,
    build_classifier,
    build_segmentation_model,
)
from als4gan.models.resnet import ResNet
from als4gan.models.weights import load_backbone_weights

# Parameter counts of torchvision's ImageNet ResNets (1000-class head): same architecture.
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
}


@pytest.mark.parametrize(("name", "count"), list(TORCHVISION_PARAMS.items()))
def test_resnet_matches_torchvision_architecture(name: str, count: int) -> None:
    model = ResNet(name)
    assert sum(p.numel() for p in model.parameters()) == count
    keys = set(model.state_dict())
    # torchvision key names (a checkpoint saved by torchvision loads strictly)
    assert {"conv1.weight", "bn1.running_mean", "fc.weight", "layer4.0.downsample.0.weight"} <= keys
    if name in ("resnet50", "resnet101"):
        assert "layer1.0.conv3.weight" in keys
        assert "layer1.0.bn3.num_batches_tracked" in keys


def test_torchvision_style_file_loads_into_backbone(tmp_path: Path) -> None:
    source = ResNet("resnet18")
    torch.save(source.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    model = build_segmentation_model(
        "deeplabv2", "resnet18", num_classes=4, pretrained=str(tmp_path / "resnet18-f37072fd.pth")
    )
    assert torch.equal(model.backbone.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    classifier = build_classifier("resnet18", 3, pretrained=str(tmp_path / "resnet18-f37072fd.pth"))
    assert torch.equal(classifier.backbone.conv1.weight, source.conv1.weight)


def test_extra_bands_adapt_first_conv(tmp_path: Path) -> None:
    torch.save(ResNet("resnet18").state_dict(), tmp_path / "w.pth")
    backbone = ResNet("resnet18", num_classes=0, in_channels=4)
    report = load_backbone_weights(backbone, tmp_path / "w.pth")
    assert report.loaded == report.expected > 50
    assert backbone.conv1.weight.shape[1] == 4


def test_missing_pretrained_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"download\.pytorch\.org.*--pretrained"):
        build_segmentation_model("deeplabv2", "resnet50", pretrained=str(tmp_path / "nope.pth"))


def test_unknown_names_list_choices() -> None:
    with pytest.raises(ConfigError, match="deeplabv2"):
        build_segmentation_model("unet")
    with pytest.raises(ConfigError, match="resnet18"):
        build_segmentation_model("deeplabv2", "vgg16")


def test_unsafe_pickle_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="could not be loaded"):
        build_segmentation_model("deeplabv2", "resnet18", pretrained=str(tmp_path / "evil.pth"))


@pytest.mark.parametrize("output_stride", [8, 16])
def test_deeplabv2_output_stride_and_shape(output_stride: int) -> None:
    model = build_segmentation_model(
        "deeplabv2", "resnet18", num_classes=5, output_stride=output_stride
    ).eval()
    x = torch.rand(2, 3, 64, 48)
    features = model.backbone.forward_features(model.normalize(x))["out"]
    assert features.shape[-2:] == (64 // output_stride, 48 // output_stride)
    assert model(x).shape == (2, 5, 64, 48)


def test_multi_scale_inputs_keep_shape() -> None:
    model = build_segmentation_model("deeplabv2", "resnet18", num_classes=3, multi_scale=True)
    assert model.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_discriminator_matches_spec() -> None:
    disc = S4GANDiscriminator(num_classes=6).eval()
    convs = [m for m in disc.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert convs[0].in_channels == 6 + 3
    assert sum(isinstance(m, torch.nn.Dropout2d) for m in disc.features) == 3
    out = disc(torch.rand(2, 6, 64, 64), torch.rand(2, 3, 64, 64))
    assert out["prob"].shape == (2,)
    assert out["features"].shape == (2, 512)
    assert torch.allclose(out["prob"], torch.sigmoid(out["logit"]))
