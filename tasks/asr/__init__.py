"""ASR family: LibriSpeech test-clean/test-other (defaults), VoxPopuli English, Common Voice English."""

from most_eval.core.task import TaskFamily

from most_eval_tasks.asr.task import CommonVoiceEN, LibriSpeechTestClean, LibriSpeechTestOther, VoxPopuliEN

FAMILY = TaskFamily(
    name="asr",
    tasks={t.name: t for t in (LibriSpeechTestClean, LibriSpeechTestOther, VoxPopuliEN, CommonVoiceEN)},
    defaults=[LibriSpeechTestClean.name, LibriSpeechTestOther.name],
    description="speech recognition: transcribe, WER",
)
