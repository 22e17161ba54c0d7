"""``python -m most_eval`` = the ``most-eval`` command (also what ``torchrun -m most_eval`` launches)."""

from most_eval.cli import main

main()
