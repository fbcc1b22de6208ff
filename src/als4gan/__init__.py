"""ALS4GAN: active learning for label-efficient semi-supervised segmentation of satellite images."""

__version__ = "0.1.0"

__all__ = ["__version__"]
