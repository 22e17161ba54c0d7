"""Spoken-LM family: sWUGGY, sBLIMP (ZeroSpeech 2021), sStoryCloze and tStoryCloze — all four by default."""

from most_eval.core.task import TaskFamily

from most_eval_tasks.slm.task import SBlimpDev, SBlimpTest, SStoryCloze, SWuggyDev, SWuggyTest, TStoryCloze

FAMILY = TaskFamily(
    name="slm",
    tasks={t.name: t for t in (SWuggyDev, SBlimpDev, SStoryCloze, TStoryCloze, SWuggyTest, SBlimpTest)},
    defaults=[SWuggyDev.name, SBlimpDev.name, SStoryCloze.name, TStoryCloze.name],
    description="spoken language modelling: pairwise likelihood accuracy",
)
