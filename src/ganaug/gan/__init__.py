"""GAN families: one registry entry each (see :mod:`ganaug.gan.family`), built in or from a
plugin's entry point (group ``ganaug.gan_families``), the shared training loop, data-efficient
training, and GAN checkpoints."""

# Importing a family's module registers it.
from ganaug.gan import noise as _noise  # noqa: F401
from ganaug.gan import sngan as _sngan  # noqa: F401
from ganaug.gan import stargan as _stargan  # noqa: F401
from ganaug.gan.family import (
    FAMILIES,
    GanFamily,
    LoadedGan,
    Nets,
    NoiseSampler,
    RealBatch,
    Sampler,
    TranslationSampler,
    family_for,
    gan_payload,
)
from ganaug.gan.knobs import gan_config
from ganaug.gan.saved import load_gan, rebuild

__all__ = ["FAMILIES", "GanFamily", "LoadedGan", "Nets", "NoiseSampler", "RealBatch", "Sampler",
           "TranslationSampler", "family_for", "gan_config", "gan_payload", "load_gan", "rebuild"]
