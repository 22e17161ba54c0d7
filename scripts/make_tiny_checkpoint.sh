#!/usr/bin/env bash
# Regenerates the bundled tiny MoST checkpoint, reference_impl/checkpoints/tiny, with the training recipe:
#
#   bash scripts/make_tiny_checkpoint.sh [WORK_DIR]      # ~1-3 min on 2 CPU cores
#
# = python -m most_reference.train --config reference_impl/configs/train_tiny.yaml --output WORK_DIR, then the
# export (adapter layout, safetensors only) is copied into place with a README.md. Needs espeak-ng on PATH for the
# spoken answers of stage 2 (install.sh installs it); without it the run goes on with text answers only.
# Deterministic on one machine (seeded, 2 threads); other CPUs / torch builds may differ in the last float bits.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=${1:-$(mktemp -d /tmp/most-tiny-XXXXXX)}
DEST=reference_impl/checkpoints/tiny

"$PY" -m most_reference.train --config reference_impl/configs/train_tiny.yaml --output "$WORK" --set checkpointing.resume=never
rm -rf "$DEST"
mkdir -p "$DEST"
cp -r "$WORK/export/." "$DEST/"

"$PY" - "$WORK" "$DEST" <<'PYEOF'
import json, sys
from pathlib import Path

work, dest = Path(sys.argv[1]), Path(sys.argv[2])
weights = [p for p in dest.rglob("*") if p.is_file() and p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
assert not weights, f"non-safetensors weight files in the export: {weights}"
size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
assert size <= 5 * 1024 * 1024, f"tiny checkpoint is {size} bytes (> 5 MB)"
info = json.loads((work / "run_info.json").read_text())
log = [json.loads(l) for l in (work / "train_log.jsonl").read_text().splitlines()]
first, last = {}, {}
for rec in log:
    for task, loss in rec["task_loss"].items():
        first.setdefault(task, (rec["step"], loss))
        last[task] = (rec["step"], loss)
losses = "\n".join(f"| {t} | {first[t][1]:.3f} (step {first[t][0]}) | {last[t][1]:.4f} (step {last[t][0]}) |"
                   for t in first)
most = json.loads((dest / "most.json").read_text())
files = "\n".join(f"    {p.relative_to(dest)}  {p.stat().st_size:,} bytes" for p in sorted(dest.rglob("*")) if p.is_file())
readme = f"""# Bundled tiny MoST checkpoint — NOT MoST, a plumbing model

**This is a tiny model ({info['parameters']['total']:,} parameters, {info['parameters']['trained']:,} trained) trained
for {most['training']['steps']} steps on 2 CPU cores on the bundled mini suite only** (espeak-ng speech, a few dozen
utterances). `most-eval run --model most` loads it when no `checkpoint=` is given, so the `most` adapter runs out of
the box on a fresh install. Its numbers test the harness end to end; they say nothing about MoST, whose weights were
announced but not released.

What it is (configs/train_tiny.yaml):
- LM: MoST architecture (modality-aware MoE: 8 routed experts, 4 text + 4 audio, top-2, 2 shared; MLA attention;
  3 layers, hidden 96), random init, character tokenizer (tokenizer.json, built offline), float32 weights.
- Speech in: a *random, frozen* HuBERT (2 layers, hidden 48, 25 Hz frames) + the trained projection.
- Units: k-means (k=16) on that HuBERT's layer-1 features of the training audio (quantizer.safetensors), runs of
  equal units collapsed (deduplicated) before they become tokens, as MoST's release does.
- Tokenizer: characters plus task tags; bos first by default (as DeepSeek's), so text tasks score after bos.
- Speech out: an *untrained* unit HiFi-GAN (vocoder/): generated speech is noise, so TTS and S->S numbers are
  floor values (a judge hears nothing intelligible).
- Training: stage 1 (ASR 0.4, TTS 0.4, text LM 0.2) then stage 2 (speech instructions 0.4, text instructions 0.4,
  ASR 0.1, TTS 0.1), the paper's mixtures (MoST paper, training stages).

Seen in training (so its numbers there are memorisation): {'; '.join(most.get('trained_on', []))}.
Never seen: {'; '.join(most.get('held_out', []))}.

Per-task training loss (LM loss, first and last logged step):

| task | first | last |
|---|---|---|
{losses}

Regenerate: `bash scripts/make_tiny_checkpoint.sh` (a few minutes on 2 idle CPU cores; needs espeak-ng for the spoken
answers). Files (safetensors only, {size:,} bytes in all):

{files}
"""
(dest / "README.md").write_text(readme)
print(f"tiny checkpoint: {dest} ({size:,} bytes)")
PYEOF
