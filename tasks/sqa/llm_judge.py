"""Optional LLM-judge scorer for spoken QA (Kimi-Audio-Evalkit's approach), from a local causal LM.

``--task-args scorer=llm-judge,judge_lm=/models/Qwen2.5-7B-Instruct``: the CLI builds that folder as an
``hf-causal-lm`` model and lends it to the task as ``TaskContext.llm_judge``. The judge reads the question, the reference
answers and the response, and is asked whether the response is correct; the verdict is whichever of " yes" / " no"
it finds more likely (log-probabilities, no sampling), so it is deterministic. It is not the default: the papers'
numbers use the has-answer rule.
"""

from __future__ import annotations

PROMPT = ("You are grading an answer to a question.\n"
          "Question: {question}\nReference answers: {answers}\nResponse: {response}\n"
          "Does the response give a correct answer to the question? Answer yes or no.\nAnswer:")


def judge_verdicts(judge, questions: list[str], answers: list[list[str]], responses: list[str]) -> list[bool]:
    """True where the judge finds " yes" more likely than " no"."""
    prompts = [PROMPT.format(question=q, answers=" | ".join(a), response=r)
               for q, a, r in zip(questions, answers, responses)]
    yes = judge.score_text(prompts, [" yes"] * len(prompts))
    no = judge.score_text(prompts, [" no"] * len(prompts))
    return [y[0] > n[0] for y, n in zip(yes, no)]
