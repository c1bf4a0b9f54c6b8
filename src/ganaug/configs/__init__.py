"""The params sections as frozen, strictly validated dataclasses: one module per section, so a
stage depends only on the sections it reads (see :mod:`ganaug.params` for the reading itself).
This package imports none of them: ``from ganaug.configs.gan import GanConfig``.
"""
