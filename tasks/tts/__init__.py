"""TTS family: intelligibility (judge-ASR WER) and speaker similarity; LibriSpeech test-clean is the default."""

from most_eval.task import Family

from most_eval_tasks.tts.task import LibriSpeechTTS, SeedTTSEvalEN

FAMILY = Family(
    name="tts",
    tasks={t.name: t for t in (LibriSpeechTTS, SeedTTSEvalEN)},
    defaults=[LibriSpeechTTS.name],
    description="speech synthesis: judge WER, speaker SIM",
)
