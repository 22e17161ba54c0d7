"""File builders of the malformed-input corpus (tests/test_malformed_corpus.py): the data roots, score files and
precomputed outputs that hold every malformed input of :data:`malformed_corpus.CORPUS`, generated from the bundled
mini suite. A plain module (no tests).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import MINI_SUITE
from malformed_corpus import CHAPTER, CV_DIR, MINI_FLAC, MINI_LEX, MINI_WAV, TRANS, UTT


def _wav_bytes(samples, subtype: str = "PCM_16", rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _tone(n: int = 8000) -> np.ndarray:
    return (0.1 * np.sin(np.arange(n) / 10.0)).astype(np.float32)


def _append_lines(path: Path, lines: list[bytes]) -> None:
    data = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(data + lines) + b"\n")


def _copy_suite(root: Path, *folders: str) -> Path:
    for folder in folders:
        shutil.copytree(MINI_SUITE / folder, root / folder, symlinks=True)
    return root


def _clean_root(root: Path) -> Path:
    """The datasets of CLEAN_TASKS, copied from the mini suite (LibriSpeech test-clean and sSC only)."""
    _copy_suite(root, CV_DIR, "voxpopuli", "webquestions", "triviaqa", "llama-questions")
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "LibriSpeech" / "test-clean")
    shutil.copytree(MINI_SUITE / "sLM21-dataset" / "lexical" / "dev", root / "sLM21-dataset" / "lexical" / "dev")
    shutil.copytree(MINI_SUITE / "spoken-storycloze" / "sSC", root / "spoken-storycloze" / "sSC")
    return root


def _break_records_root(root: Path, outside: Path) -> None:
    """Add every per-sample malformation (error records) to a clean root; the clean samples stay as they are."""
    flac = next((MINI_SUITE / "LibriSpeech" / "test-clean").rglob("*.flac")).read_bytes()
    good_wav = _wav_bytes(_tone())
    # LibriSpeech: a chapter of broken utterances
    ch = root / "LibriSpeech" / "test-clean" / CHAPTER
    ch.mkdir(parents=True)
    (ch / f"{UTT}0000.flac").write_bytes(bytes(range(256)) * 16)  # corrupt bytes
    (ch / f"{UTT}0001.flac").write_bytes(flac[: len(flac) // 3])  # FLAC cut short
    (ch / f"{UTT}0002.flac").write_bytes(flac[:42])  # "fLaC" + STREAMINFO, no frames
    (ch / f"{UTT}0003.flac").write_bytes(good_wav[:30])  # WAV header cut short
    (ch / f"{UTT}0004.flac").write_bytes(b"")  # 0 bytes
    inf = _tone()
    inf[10], inf[20] = np.inf, -np.inf
    (ch / f"{UTT}0005.flac").write_bytes(_wav_bytes(inf, "FLOAT"))
    (ch / f"{UTT}0006.flac").mkdir()  # a directory with an audio name
    (ch / f"{UTT}0007.flac").symlink_to(outside / "no-such-target.flac")  # dangling symlink
    (ch / f"{UTT}0008.flac").write_bytes(flac)
    lines = [f"{UTT}{i:04d} THE OLD MAN SAT DOWN".encode() for i in range(9)]  # lines 1-9: 0000 ... 0008
    lines.append(f"{UTT}0009 THE CAF\xc9 WAS CLOSED".encode("latin-1"))  # line 10: Latin-1, not UTF-8
    lines.append(f"{UTT}0008 HE SAID NOTHING AT ALL".encode())  # line 11: 0008 listed a second time
    # hostile ids and files (lines 12-16): each target exists, outside the data root or in a subfolder
    shutil.copy(MINI_FLAC + ".flac", outside / "secret-libri.flac")
    (ch / "sub").mkdir()
    (ch / "sub" / f"{UTT}0012.flac").write_bytes(flac)
    (ch / f"{UTT}0010.flac").symlink_to(outside / "secret-libri.flac")
    os.mkfifo(ch / f"{UTT}0011.flac")
    lines += [b"../../../../../outside/secret-libri THE SECRET WORDS",  # line 12: resolves to outside/
              f"{MINI_FLAC} THE OLD MAN SAT DOWN".encode(),  # line 13: an absolute path
              f"sub/{UTT}0012 THE SUB FOLDER".encode(),  # line 14: a path, not an id
              f"{UTT}0010 THE SECRET LINK".encode(),  # line 15: a symlink out of the root
              f"{UTT}0011 THE NAMED PIPE".encode()]  # line 16: a FIFO where the flac should be
    (ch / TRANS).write_bytes(b"\n".join(lines) + b"\n")
    (root / "LibriSpeech" / "test-clean" / "1089" / "999998").mkdir()
    os.mkfifo(root / "LibriSpeech" / "test-clean" / "1089" / "999998" / "1089-999998.trans.txt")
    (outside / "secret.trans.txt").write_text("1089-999997-0000 THE SECRET TRANSCRIPT\n")
    (root / "LibriSpeech" / "test-clean" / "1089" / "999997").mkdir()
    (root / "LibriSpeech" / "test-clean" / "1089" / "999997" / "1089-999997.trans.txt").symlink_to(
        outside / "secret.trans.txt")

    # Common Voice: lines 6.. of test.tsv
    cv = root / CV_DIR / "en"
    tsv = cv / "test.tsv"
    header = tsv.read_bytes().splitlines()[0].split(b"\t")
    template = tsv.read_bytes().splitlines()[1].split(b"\t")
    path_col, sent_col = header.index(b"path"), header.index(b"sentence")

    def row(path: bytes, sentence: bytes) -> bytes:
        fields = list(template)
        fields[path_col], fields[sent_col] = path, sentence
        return b"\t".join(fields)

    garbage_mp3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8  # an ID3 tag, then no MPEG frame
    (cv / "clips" / "common_voice_en_garbage.mp3").write_bytes(garbage_mp3)
    secret = outside / "secret.mp3"
    shutil.copy(next((cv / "clips").glob("common_voice_en_1*.mp3")), secret)
    shutil.copy(secret, outside / "secret2.mp3")
    (cv / "clips" / "common_voice_en_symlink.mp3").symlink_to(secret)
    os.mkfifo(cv / "clips" / "common_voice_en_fifo.mp3")
    _append_lines(tsv, [b"only\tthree\tfields",  # line 6
                        row(str(secret).encode(), b"An absolute path."),  # line 7
                        row(b"common_voice_en_19000101.mp3", b"The caf\xe9 opens at nine."),  # line 8
                        row(b"common_voice_en_garbage.mp3", b"Garbage in."),  # line 9
                        row(b"../../../../outside/secret2.mp3", b"Up and out."),  # line 10
                        row(b"common_voice_en_symlink.mp3", b"A symlink out."),  # line 11
                        row(b"common_voice_en_fifo.mp3", b"A named pipe.")])  # line 12

    # VoxPopuli: line 6 has two fields; line 7 points to a garbage ogg
    vox = root / "voxpopuli" / "transcribed_data" / "en"
    vtsv = vox / "asr_test.tsv"
    vtemplate = vtsv.read_bytes().splitlines()[1].split(b"\t")
    vtemplate[0] = b"20990101-0900-PLENARY-1-en_garbage_0"
    (vox / "2099").mkdir()
    (vox / "2099" / "20990101-0900-PLENARY-1-en_garbage_0.ogg").write_bytes(b"OggS" + bytes(200))
    good_ogg = next((MINI_SUITE / "voxpopuli").rglob("*.ogg"))
    shutil.copy(good_ogg, outside / "secret-vox.ogg")
    (vox / "2099" / "20990101-0900-PLENARY-1-en_secret_0.ogg").symlink_to(outside / "secret-vox.ogg")
    dotdot, link = list(vtemplate), list(vtemplate)
    dotdot[0], link[0] = b"../../../../../outside/secret-vox", b"20990101-0900-PLENARY-1-en_secret_0"
    _append_lines(vtsv, [b"20990101-0900-PLENARY-1-en_x_1\tonly two", b"\t".join(vtemplate),  # lines 6, 7
                         b"\t".join(dotdot), b"\t".join(link)])  # line 8: an id with "..", line 9: a symlink out

    # Seed-TTS: every line broken (no judge or speaker embedder is needed then)
    seed = root / "seedtts_testset" / "en"
    seed.mkdir(parents=True)
    (seed / "prompt-wavs").mkdir()
    (outside / "secret.wav").write_bytes(good_wav)
    (seed / "prompt-wavs" / "secret-link.wav").symlink_to(outside / "secret.wav")
    os.mkfifo(seed / "prompt-wavs" / "fifo.wav")
    (seed / "meta.lst").write_text("utt-few|only two fields\n"
                                   "utt-escape|hi|../../../secret.wav|Hello there.\n"
                                   "utt-missing|hi|prompt-wavs/nowhere.wav|Hello again.\n"
                                   "utt-symlink|hi|prompt-wavs/secret-link.wav|A symlink out.\n"
                                   "utt-fifo|hi|prompt-wavs/fifo.wav|A named pipe.\n"
                                   "|hi|prompt-wavs/nowhere.wav|No id.\n")

    # WebQuestions: lines 4.. of test.jsonl
    webq = root / "webquestions"
    (webq / "audio" / "6.wav").write_bytes(_wav_bytes(np.full(4000, np.nan, dtype=np.float32), "FLOAT"))
    (webq / "audio" / "7.wav").write_bytes(good_wav)
    (webq / "audio" / "8.wav").write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n")
    _append_lines(webq / "test.jsonl", [
        b'{"question": "where is it?", "answers": ["here"], "audio": "audio/9.wav"',  # line 4: cut short
        json.dumps({"question": "no answers?", "answers": [], "audio": "audio/7.wav"}).encode(),  # line 5
        json.dumps({"question": "nan?", "answers": ["x"], "audio": "audio/6.wav"}).encode(),  # line 6
        json.dumps({"question": "html?", "answers": ["y"], "audio": "audio/8.wav"}).encode(),  # line 7
        # typed fields and a symlink out (lines 8-13); the wavs exist, so only the check refuses them
        json.dumps({"question": "bool?", "answers": True, "audio": "audio/10.wav"}).encode(),
        json.dumps({"question": "null?", "answers": None, "audio": "audio/11.wav"}).encode(),
        json.dumps({"question": "null alias?", "answers": ["x", None], "audio": "audio/12.wav"}).encode(),
        json.dumps({"question": "number path?", "answers": ["x"], "audio": 13}).encode(),
        json.dumps({"question": "symlink?", "answers": ["x"], "audio": "audio/secret-link.wav"}).encode(),
        json.dumps({"question": None, "answers": ["x"], "audio": "audio/14.wav"}).encode()])
    for name in ("10", "11", "12", "13", "14"):
        (webq / "audio" / f"{name}.wav").write_bytes(good_wav)
    (outside / "secret-q.wav").write_bytes(good_wav)
    (webq / "audio" / "secret-link.wav").symlink_to(outside / "secret-q.wav")

    # TriviaQA: lines 4.. of test.jsonl
    trivia = root / "triviaqa"
    (trivia / "audio" / "8.wav").write_bytes(good_wav)
    (trivia / "audio" / "9.wav").write_bytes(_wav_bytes(np.zeros(0, dtype=np.float32)))
    _append_lines(trivia / "test.jsonl", [
        b'["Which element has the symbol O?", ["Oxygen"]]',  # line 4: not an object
        json.dumps({"question": "escape?", "answer": ["a"], "audio": "../secret/q.wav"}).encode(),  # line 5
        json.dumps({"question": "silence?", "answer": ["b"], "audio": "audio/9.wav"}).encode(),  # line 6
        json.dumps({"question": "no answer field?", "audio": "audio/8.wav"}).encode(),  # line 7
        json.dumps({"question": "bool?", "answer": False, "audio": "audio/10.wav"}).encode(),  # line 8
        json.dumps({"question": "absolute?", "answer": ["a"], "audio": MINI_WAV}).encode(),  # line 9
        json.dumps({"question": "fifo?", "answer": ["a"], "audio": "audio/fifo.wav"}).encode()])  # line 10
    (trivia / "audio" / "10.wav").write_bytes(good_wav)
    os.mkfifo(trivia / "audio" / "fifo.wav")

    # Llama Questions: lines 6.. of the TSV
    llama = root / "llama-questions"
    (llama / "5.wav").write_bytes(good_wav)
    (llama / "secret-link.wav").symlink_to(outside / "secret-q.wav")
    _append_lines(llama / "llama_questions_300.tsv", [b"Escape?\tx\t../../outside/secret-q.wav",  # line 6
                                                      b"Bool?\t[true]\t5.wav",  # line 7: a bool in a JSON list
                                                      b"Symlink?\tx\tsecret-link.wav"])  # line 8

    # sLM21 lexical dev: gold rows for missing / corrupt wavs, and a wav gold.csv does not list
    lex = root / "sLM21-dataset" / "lexical" / "dev"
    _append_lines(lex / "gold.csv", [b"missingWavA,99,en-us,5,zebra,Z IY B R AH,5,1",
                                     b"missingWavB,99,en-us,0,zebro,Z IY B R OW,5,0",
                                     b"corruptWavA,98,en-us,5,tiger,T AY G ER,5,1",
                                     b"corruptWavB,98,en-us,0,tigel,T AY G AH L,5,0"])
    _append_lines(lex / "gold.csv", [b"../../../../outside/secretWav,97,en-us,5,lion,L AY AH N,4,1",
                                     f"{MINI_LEX},97,en-us,0,liom,L AY AH M,4,0".encode(),
                                     b"symlinkWav,96,en-us,5,bear,B EH R,4,1",
                                     b"fifoWav,96,en-us,0,beal,B IY L,4,0"])
    (outside / "secretWav.wav").write_bytes(good_wav)
    (lex / "symlinkWav.wav").symlink_to(outside / "secretWav.wav")
    os.mkfifo(lex / "fifoWav.wav")
    (lex / "corruptWavA.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    (lex / "corruptWavB.wav").write_bytes(good_wav)
    (lex / "strayWav.wav").write_bytes(good_wav)

    # spoken StoryCloze: an unpaired ending and a wav named outside the convention
    ssc = root / "spoken-storycloze" / "sSC"
    shutil.copy(ssc / "0_correct.wav", ssc / "3_correct.wav")
    shutil.copy(ssc / "0_correct.wav", ssc / "story_4.wav")
    shutil.copy(ssc / "0_correct.wav", outside / "secret-story.wav")
    (ssc / "5_correct.wav").symlink_to(outside / "secret-story.wav")
    os.mkfifo(ssc / "5_incorrect.wav")


def _dataset_error_root(root: Path) -> Path:
    """Whole manifests that cannot be read, plus a clean LibriSpeech (it must still be scored)."""
    _copy_suite(root, CV_DIR, "voxpopuli", "llama-questions", "webquestions")
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "LibriSpeech" / "test-clean")
    shutil.copytree(MINI_SUITE / "sLM21-dataset", root / "sLM21-dataset")
    tsv = root / CV_DIR / "en" / "test.tsv"
    lines = tsv.read_bytes().splitlines()
    tsv.write_bytes(b"\n".join([lines[0].replace(b"\tsentence\t", b"\ttext\t")] + lines[1:]) + b"\n")
    (root / "voxpopuli" / "transcribed_data" / "en" / "asr_test.tsv").write_bytes(b"")
    llama = root / "llama-questions" / "llama_questions_300.tsv"
    llama.write_bytes(b"\n".join(llama.read_bytes().splitlines()[1:]) + b"\n")
    gold = root / "sLM21-dataset" / "syntactic" / "dev" / "gold.csv"
    rows = [line.split(b",") for line in gold.read_bytes().splitlines()]
    drop = rows[0].index(b"subtype")
    gold.write_bytes(b"\n".join(b",".join(r[:drop] + r[drop + 1:]) for r in rows) + b"\n")
    lex = root / "sLM21-dataset" / "lexical" / "dev" / "gold.csv"
    lex.write_bytes(lex.read_bytes().replace(b",water,", b",wat\xe9r,", 1))  # Latin-1, not UTF-8
    webq = root / "webquestions"
    (webq / "test.jsonl").unlink()
    (webq / "test.parquet").write_bytes(b"PAR1" + b"this is not a parquet file" * 4)
    # manifests that are no regular file: each must be refused at once (a blocking open would hang the run)
    _copy_suite(root, "seedtts_testset", "triviaqa")
    for fifo in (root / "seedtts_testset" / "en" / "meta.lst", root / "triviaqa" / "test.jsonl"):
        fifo.unlink()
        os.mkfifo(fifo)
    (root / "sLM21-dataset" / "lexical" / "test").mkdir()
    os.mkfifo(root / "sLM21-dataset" / "lexical" / "test" / "gold.csv")
    (root / "sLM21-dataset" / "syntactic" / "test" / "gold.csv").mkdir(parents=True)
    return root


def _hostile_sets_root(root: Path, outside: Path) -> Path:
    """Whole manifests that are symlinks out of the root, a FIFO or a directory; a clean LibriSpeech beside them."""
    _copy_suite(root, CV_DIR, "voxpopuli", "llama-questions", "webquestions")
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "LibriSpeech" / "test-clean")
    for manifest, secret in ((root / CV_DIR / "en" / "test.tsv", "secret-test.tsv"),
                             (root / "webquestions" / "test.jsonl", "secret-test.jsonl")):
        shutil.copy(manifest, outside / secret)  # a readable table: only the containment check refuses it
        manifest.unlink()
        manifest.symlink_to(outside / secret)
    vox = root / "voxpopuli" / "transcribed_data" / "en" / "asr_test.tsv"
    vox.unlink()
    os.mkfifo(vox)
    llama = root / "llama-questions" / "llama_questions_300.tsv"
    llama.unlink()
    llama.mkdir()
    return root


def _stems(kind: str) -> list[str]:
    gold = (MINI_SUITE / "sLM21-dataset" / kind / "dev" / "gold.csv").read_text().splitlines()
    return [line.split(",")[0] for line in gold[1:] if line.strip()]


def _submission(stems, **special) -> str:
    return "".join(f"{s} {special.get(s, f'{-1.0 - i / 8:.4f}')}\n" for i, s in enumerate(stems))


def _zerospeech_inputs(root: Path, pre: Path) -> None:
    """sLM21 with dev and test splits (the mini suite's dev twice) and four malformed submissions."""
    for kind in ("lexical", "syntactic"):
        for split in ("dev", "test"):
            (root / "sLM21-dataset" / kind).mkdir(parents=True, exist_ok=True)
            (root / "sLM21-dataset" / kind / split).symlink_to(MINI_SUITE / "sLM21-dataset" / kind / "dev")
    lex, syn = _stems("lexical"), _stems("syntactic")
    assert "rEtbHwBxCTU" in lex and syn[0] == "hEWFkMYAYbV"
    (pre / "lexical").mkdir(parents=True)
    (pre / "syntactic").mkdir()
    (pre / "lexical" / "dev.txt").write_text(_submission(lex, rEtbHwBxCTU="nan"))
    (pre / "syntactic" / "dev.txt").write_text(_submission(syn[1:]))  # the first stem's line is missing
    (pre / "lexical" / "test.txt").write_text(_submission(lex) + "rEtbHwBxCTU -0.5\n")  # listed twice
    (pre / "syntactic" / "test.txt").write_text(_submission(syn) + "unknownStem -1.0\n")


def _precomputed_inputs(pre: Path) -> None:
    """Precomputed outputs for the mini suite, one malformed line per file."""
    (pre / "lexical").mkdir(parents=True)
    (pre / "lexical" / "dev.txt").write_text(_submission(_stems("lexical"), RceaTFtSnYB="abc"))
    libri = sorted(line.split(" ", 1)[0] for t in (MINI_SUITE / "LibriSpeech" / "test-clean").rglob("*.trans.txt")
                   for line in t.read_text().splitlines() if line.strip())
    assert "1089-134686-0001" in libri
    lines = [json.dumps({"id": u, "text": "the old man sat down"}) for u in libri]
    lines[libri.index("1089-134686-0001")] = '{"id": "1089-134686-0001", "text": "he said noth'
    (pre / "asr_librispeech-test-clean.jsonl").write_text("\n".join(lines) + "\n")
    (pre / "sqa_webquestions-s2t.jsonl").write_text(
        '{"id": "0", "text": "France"}\n{"text": "Portuguese"}\n{"id": "2", "text": "Shakespeare"}\n')
    (pre / "sqa_llama-questions-s2t.jsonl").write_text(  # id 2 answered twice, differently
        '{"id": "1", "text": "Paris"}\n{"id": "2", "text": "eight"}\n{"id": "3", "text": "Mars"}\n'
        '{"id": "4", "text": "blue"}\n{"id": "2", "text": "six"}\n')
    (pre / "sqa_triviaqa-s2t.jsonl").write_text(
        '{"id": "0", "text": "oxygen"}\n{"id": "1", "answer": "six"}\n{"id": "2", "text": "da vinci"}\n')
    stories = [f"{i}_{w}" for i in range(3) for w in ("correct", "incorrect")]
    (pre / "slm_sstorycloze.jsonl").write_text("".join(
        json.dumps({"id": s, "logprob": -3.0} if s == "1_correct" else {"id": s, "score": -3.0}) + "\n"
        for s in stories))
    (pre / "slm_tstorycloze.jsonl").write_text("".join(
        json.dumps({"id": s, "score": "high" if s == "1_correct" else -3.0}) + "\n" for s in stories))
