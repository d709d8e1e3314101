"""``python -m orderhub``."""

from orderhub.cli import entrypoint

entrypoint()
