"""TTS family: intelligibility (judge-ASR WER) and speaker similarity; LibriSpeech test-clean is the default."""

from most_eval.core.task import TaskFamily

from most_eval_tasks.tts.task import CommonVoiceTTS, LibriSpeechOtherTTS, LibriSpeechTTS, SeedTTSEvalEN, VoxPopuliTTS

FAMILY = TaskFamily(
    name="tts",
    tasks={t.name: t for t in (LibriSpeechTTS, LibriSpeechOtherTTS, VoxPopuliTTS, CommonVoiceTTS, SeedTTSEvalEN)},
    defaults=[LibriSpeechTTS.name],
    description="speech synthesis: judge WER, speaker SIM",
)
