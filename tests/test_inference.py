import torch
from torch import nn

from als4gan.inference import iter_windows, predict_probs


class PixelModel(nn.Module):
    """A per-pixel model (1x1 conv): sliding windows must reproduce the direct pass exactly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_windows_cover_image_without_padding() -> None:
    covered = torch.zeros(70, 100, dtype=torch.bool)
    for top, left, h, w in iter_windows(70, 100, 32, 0.25):
        assert top + h <= 70 and left + w <= 100
        covered[top : top + h, left : left + w] = True
    assert covered.all()


def test_sliding_window_equals_direct_pass_for_pixel_model() -> None:
    model = PixelModel().eval()
    image = torch.rand(2, 3, 70, 100)
    direct = predict_probs(model, image, 4)
    tiled = predict_probs(model, image, 4, window=32, overlap=0.25, batch_size=3)
    assert tiled.shape == (2, 4, 70, 100)
    assert torch.allclose(direct, tiled, atol=1e-5)
