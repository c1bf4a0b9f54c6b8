"""ganaug: how far can GAN-generated images help a classifier? A reproducible DVC study."""

__version__ = "0.1.0"
