"""The choices of ``most-eval routing``, in a module without torch so that ``--help`` stays fast."""

#: the harness task whose utterances (audio + reference transcript) the report reads by default
SOURCE_TASK = "asr:librispeech-test-clean"
#: `--routing`: force the modality mask on, off (plain DeepSeek-V2 MoE), or keep the checkpoint's setting
ROUTING_MODES = ("on", "off", "checkpoint")
#: the registered model the report runs on
ROUTING_MODEL = "most"
