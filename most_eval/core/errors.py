"""One error hierarchy: every error a user can meet derives from :class:`MostEvalError`, and its ``str()`` is one
line naming the file, option or name at fault and the reason (the CLI prints it as it is, never a traceback).

The specific errors live beside the code that raises them (:class:`~most_eval.core.options.OptionError`,
:class:`~most_eval.core.audio.AudioError`, :class:`~most_eval.core.hf_loading.ModelLoadError`, ...); the two that
several layers raise are defined here."""

from __future__ import annotations


class MostEvalError(Exception):
    """Base of every user-facing most-eval error: catch this to report any of them as one line."""


class DatasetError(MostEvalError):
    """A dataset that cannot be read at all (missing folder, unreadable manifest): one line, file and reason."""


class ModelFilesError(MostEvalError):
    """A model's local files are missing or unusable (no weights, wrong layout, a hub id while offline); the message
    already names the folder and what to do, so it is shown without the exception's type name."""
