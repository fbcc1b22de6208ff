"""Exceptions that carry a message meant for the user (what went wrong, where, and the fix)."""

from __future__ import annotations


class Als4ganError(Exception):
    """Base class: the CLI prints these as ``error: <message>`` without a traceback."""


class ConfigError(Als4ganError, ValueError):
    """An option or configuration value is invalid."""


class DatasetNotFoundError(Als4ganError, FileNotFoundError):
    """A dataset root, split file or expected file is missing."""


class DataError(Als4ganError, ValueError):
    """Input data is present but unusable (corrupt image, bad mask values, size mismatch...)."""


class BudgetError(Als4ganError, ValueError):
    """A labelling budget cannot be met (e.g. larger than the pool, empty pool)."""


class CheckpointError(Als4ganError):
    """A checkpoint is missing, unreadable, or incompatible with the request."""


class RunExistsError(Als4ganError):
    """A finished run would be overwritten; pass ``--force`` to allow it."""


class TrainingDivergedError(Als4ganError):
    """A loss became non-finite; the last good checkpoint is kept."""


class RunLockedError(Als4ganError):
    """Another process is writing the same run folder (the message names its pid and host)."""
