"""The dataset-reading layer (most_eval.data.files): paths stay under the root, manifests are regular files opened
without blocking, fields are typed, output names are single safe file names."""

from __future__ import annotations

import os
import threading

import pytest

from most_eval.data import files as F
from most_eval.data.tables import read_lines
from most_eval.core.errors import DatasetError


def within(seconds: float, call):
    """``call()``'s result, or a test failure if it blocks (a daemon thread, so a hang cannot keep pytest alive)."""
    box = {}

    def target():
        try:
            box["value"] = call()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for more than {seconds}s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture()
def tree(tmp_path):
    """root/ with a file, a subfolder, symlinks in and out; outside/ with a secret."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a.txt").write_text("inside\n")
    (root / "sub" / "b.txt").write_text("inside too\n")
    (outside / "secret.txt").write_text("SECRET\n")
    (root / "in-link.txt").symlink_to(root / "sub" / "b.txt")
    (root / "out-link.txt").symlink_to(outside / "secret.txt")
    (root / "dangling.txt").symlink_to(outside / "missing.txt")
    (root / "loop").symlink_to(root / "loop")
    (root / "sub-out").symlink_to(outside)
    os.mkfifo(root / "pipe")
    return root


def test_safe_path_accepts_paths_inside_and_returns_them_unresolved(tree):
    assert F.safe_path(tree, "a.txt") == tree / "a.txt"
    assert F.safe_path(tree, "sub/b.txt") == tree / "sub" / "b.txt"
    assert F.safe_path(tree, "in-link.txt") == tree / "in-link.txt"  # a symlink that stays inside is fine
    assert F.safe_path(tree, "missing.txt") == tree / "missing.txt"  # existence is file_problem's business


@pytest.mark.parametrize("relative", ["../outside/secret.txt", "sub/../../outside/secret.txt", "sub/../a.txt",
                                      "..", "/etc/passwd", "out-link.txt", "sub-out/secret.txt", "dangling.txt"])
def test_safe_path_refuses_dotdot_absolute_and_symlinks_out(tree, relative):
    with pytest.raises(ValueError, match="escapes the dataset root"):
        F.safe_path(tree, relative)


@pytest.mark.parametrize("relative", ["", "  ", "a\0b", "loop"])
def test_safe_path_refuses_empty_nul_and_loops(tree, relative):
    with pytest.raises(ValueError, match="not a file name|cannot be resolved|escapes"):
        F.safe_path(tree, relative)


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "../x", "/abs", "nul\0"])
def test_plain_name_refuses_what_is_not_one_file_name(name):
    with pytest.raises(ValueError, match="not a plain file name"):
        F.plain_name(name, "utterance id")


def test_plain_name_accepts_ids():
    assert F.plain_name("1089-134686-0000") == "1089-134686-0000"
    assert F.plain_name("a..b") == "a..b"  # ".." inside a name is no path component


def test_file_problem_names_each_kind_without_opening(tree):
    assert F.file_problem(tree / "a.txt") is None
    assert F.file_problem(tree / "in-link.txt", tree) is None
    assert F.file_problem(tree / "nowhere.wav") == "not found"
    assert F.file_problem(tree / "sub") == "is a directory, not a regular file"
    assert F.file_problem(tree / "pipe") == "is a FIFO, not a regular file"
    assert F.file_problem("/dev/null") == "is a character device, not a regular file"
    assert "escapes the dataset root" in F.file_problem(tree / "out-link.txt", tree)
    assert "dangling symlink" in F.file_problem(tree / "dangling.txt", tree)


def test_open_regular_refuses_fifo_directory_and_device_at_once(tree):
    for path, kind in ((tree / "pipe", "a FIFO"), (tree / "sub", "a directory"), ("/dev/zero", "a character device")):
        with pytest.raises(DatasetError, match=f"{path}: is {kind}, not a regular file"):
            within(5, lambda p=path: F.read_bytes(p))
    with pytest.raises(DatasetError, match="not found"):
        F.read_bytes(tree / "nowhere.txt")
    assert F.read_bytes(tree / "a.txt") == b"inside\n"
    with F.open_regular(tree / "a.txt") as handle:  # the descriptor is blocking again: a plain binary file
        assert os.get_blocking(handle.fileno()) and handle.read() == b"inside\n"


def test_read_lines_of_a_fifo_is_a_dataset_error_not_a_hang(tree):
    with pytest.raises(DatasetError, match="FIFO"):
        within(5, lambda: list(read_lines(tree / "pipe")))


def test_a_permission_error_names_the_file_and_the_reason(tree, monkeypatch):
    real_open = os.open

    def denied(path, *args, **kwargs):
        if str(path).endswith("a.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(F.os, "open", denied)
    with pytest.raises(DatasetError) as info:
        list(read_lines(tree / "a.txt"))
    assert str(info.value) == f"{tree / 'a.txt'}: cannot read (Permission denied)"


def test_manifest_path_errors_are_one_line_naming_the_manifest(tree):
    assert F.manifest_path(tree, "a.txt", "table") == tree / "a.txt"
    for name, reason in (("nowhere.tsv", "table not found"), ("pipe", "table is a FIFO"),
                         ("sub", "table is a directory"), ("out-link.txt", "escapes the dataset root")):
        with pytest.raises(DatasetError, match=reason) as info:
            F.manifest_path(tree, name, "table")
        assert str(info.value).startswith(f"{tree / name}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("value, text", [("Paris", "Paris"), (1984, "1984"), (1984.0, "1984"), (3.5, "3.5"),
                                         (-2, "-2")])
def test_text_field_takes_text_and_numbers(value, text):
    assert F.text_field(value, "answer") == text


@pytest.mark.parametrize("value, reason", [(True, "answer is a bool (true)"), (None, "answer is null"),
                                           (float("nan"), "answer is null"), ({"a": 1}, "answer is an object"),
                                           (["a"], "answer is a list"), (float("inf"), "answer is a number")])
def test_text_field_refuses_bools_nulls_and_containers(value, reason):
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        F.text_field(value, "answer")


def test_text_field_without_numbers_and_number_field():
    with pytest.raises(ValueError, match="audio path is a number \\(7\\), not text"):
        F.text_field(7, "audio path", numbers=False)
    assert F.number_field(2, "duration") == 2.0 and F.number_field(0.5, "start") == 0.5
    for bad in ("1.5", True, None, float("nan"), [1]):
        with pytest.raises(ValueError, match="duration is .*, not a number"):
            F.number_field(bad, "duration")


def test_text_list_names_the_bad_item_and_drops_blank_aliases():
    assert F.text_list(["Oxygen", 8, ""], "answer") == ["Oxygen", "8"]
    assert F.text_list(1984, "answer") == ["1984"]
    with pytest.raises(ValueError, match=r"answer\[1\] is null"):
        F.text_list(["x", None], "answer")
    with pytest.raises(ValueError, match=r"answer\[0\] is a bool"):
        F.text_list([False, "x"], "answer")


@pytest.mark.parametrize("sample_id", ["1089-134686-0000", "common_voice_en_1.x", "a..b"])
def test_output_name_keeps_safe_ids(sample_id):
    assert F.output_name(sample_id, ".wav") == f"{sample_id}.wav"


@pytest.mark.parametrize("sample_id", ["../../x", "/tmp/x", "..", ".", "", "a/b", "a\\b", "é", "a\0b", "x" * 400,
                                       "rf/", "-f/etc/passwd"])
def test_output_name_is_one_safe_file_name_for_any_id(sample_id, tmp_path):
    name = F.output_name(sample_id, ".wav")
    assert "/" not in name and "\0" not in name and name.strip(".") and len(name) < 255
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert (tmp_path / name).parent == tmp_path
    (tmp_path / name).write_bytes(b"")  # a real file name on this file system


def test_output_names_of_different_ids_differ():
    ids = ["a/b", "a_b", "a b", "a:b", "../a_b", "/a_b", "", ".", ".."]
    assert len({F.output_name(i) for i in ids}) == len(ids)
