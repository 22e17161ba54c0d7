"""Spoken-QA family: Llama Questions, WebQuestions, TriviaQA; speech->text and speech->speech (all six by default)."""

from most_eval.core.task import TaskFamily

from most_eval_tasks.sqa.task import TASKS

FAMILY = TaskFamily(
    name="sqa",
    tasks={t.name: t for t in TASKS},
    defaults=[t.name for t in TASKS],
    description="spoken question answering: has-answer accuracy",
)
