"""orderhub: every order from every channel, one customer per person."""

from __future__ import annotations

__version__ = "0.1.0"
