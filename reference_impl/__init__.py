"""MoST reference implementation (import name `most_reference`).

Modules, in reading order:
  model.py           MoSTConfig, modality marks, ModalityAwareRouter, MoSTMoe, MoSTForCausalLM (on transformers' DeepSeek-V2)
  speech_encoder.py  frozen HuBERT + projection (speech in), unit quantizers
  vocoder.py         unit HiFi-GAN on speechbrain's generator (speech out)
  import_weights.py  DeepSeek-V2-Lite / HuBERT / vocoder / quantizer from local files, CheckpointError
  adapter.py         the `most` model adapter for the harness
  configs/           most_full.json (the paper's model), most_tiny.json (tests)
"""
