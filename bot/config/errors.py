"""The one exception every configuration mistake is raised as."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration mistake, phrased as one line for the person who made it."""
