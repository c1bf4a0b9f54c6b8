"""Conditional GANs: models, losses, the registry ``gan.arch`` picks from, and training."""

from ganaug.gan.registry import GANS, GanSpec, build_gan, gan_payload, load_gan

__all__ = ["GANS", "GanSpec", "build_gan", "gan_payload", "load_gan"]
