"""most-eval: evaluation harness and reference implementation for speech-text LLMs built around MoST.

Start with :mod:`most_eval.core.adapter` (the model contract) and :mod:`most_eval.core.task` (the task contract).
"""

__version__ = "0.1.0"
