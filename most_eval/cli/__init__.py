"""The ``most-eval`` command line (:mod:`most_eval.cli.app`); library code never imports it."""

from .app import app, main

__all__ = ["app", "main"]
