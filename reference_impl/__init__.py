"""MoST reference implementation (import name `most_reference`).

Modules, in reading order:
  model.py           MoSTConfig, modality marks, ModalityAwareRouter, MoSTMoe, MoSTForCausalLM (on transformers' DeepSeek-V2)
  speech_encoder.py  frozen HuBERT + projection (speech in), unit quantizers
  vocoder.py         unit HiFi-GAN on speechbrain's generator (speech out)
  import_weights.py  DeepSeek-V2-Lite / HuBERT / vocoder / quantizer from local files, CheckpointError
  adapter.py         the `most` model adapter for the harness
  manifests.py       training manifests (LibriSpeech, LibriHeavy, Common Voice, VoxPopuli, JSONL, QA), bad-data log
  units.py           waveforms at 16 kHz, k-means, resumable HuBERT unit extraction
  data.py            per-task example tables, the micro-batch dataset; `python -m most_reference.data` CLI
  mixing.py          ASR / TTS / text-LM / instruction sequence formats and the paper's stage mixtures
  train.py           the training recipe on accelerate (setup / train / save_checkpoint / export / cleanup)
  configs/           most_full.json (the paper's model), most_tiny.json (tests), train_*.yaml, accelerate_*.yaml
  launch/            single- and multi-node launch scripts
  checkpoints/tiny/  the bundled tiny checkpoint (trained on the mini suite only; scripts/make_tiny_checkpoint.sh)
"""
