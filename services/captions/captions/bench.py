"""``make bench-captions``: the captions transcription against faster-whisper called directly, on 60 s of speech.

Both paths use the same model, options and threads, in one process, on a clip generated with espeak-ng from a known
text; after a warm-up they run alternately (``--rounds`` each) and each path's best round is reported. Printed: wall and CPU seconds of each run and their ratio (the platform's overhead), realtime factor, WER against
the text, peak RSS, and the style violations of whisper's raw segments (as cues) against the delivered track's.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jiwer

from common.testing.speech import make_speech

from .config import CaptionsSettings
from .cues import Cue, build_cues
from .model import load_whisper, model_dir
from .profiles import ENGLISH
from .quality import check, summary
from .stt import SttOptions, Transcriber

T = TypeVar("T")

BENCH_SCRIPT = (
    "Good morning, and welcome to the weekly news from our small town. The library will open a new reading room "
    "next month. Children can borrow books, play games, and meet their friends after school. The bakery on the "
    "main street is looking for a new cook. If you like to work early in the morning, please call them this week. "
    "The train to the city leaves every morning from the old station near the river. Please bring a warm coat, "
    "because the evenings are cold in the mountains. The town council will meet on Tuesday evening to talk about "
    "the new bridge. Everyone is welcome, and there will be tea and cake after the meeting. The swimming pool "
    "will close for two weeks in August, while the workers paint the walls and clean the water. Our football "
    "team won the last game of the season, and the players thank all the families who came to watch. Please "
    "remember to bring water and a hat, because the sun will be strong in the afternoon. Finally, "
    "the weather will be warm and sunny on Saturday, so bring your family to the park for the summer concert."
)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(settings: CaptionsSettings, *, rounds: int = 2) -> dict[str, Any]:
    """Measure both paths ``rounds`` times each, alternating, after a warm-up; the numbers of each one's best round."""
    sample = make_speech([BENCH_SCRIPT])
    end_ms = round(sample.duration_s * 1000)
    options = SttOptions.from_settings(settings)
    model = load_whisper(
        model_dir(model_path=settings.whisper_model_path, cache_dir=settings.whisper_cache_dir),
        threads=settings.whisper_threads,
        compute_type=settings.whisper_compute_type,
    )

    def direct() -> list[Any]:
        segments, _ = model.transcribe(str(sample.path), **options.transcribe_kwargs())
        return list(segments)

    def service() -> list[Cue]:
        transcript = Transcriber(model, options).transcribe(sample.path)
        return build_cues(transcript.words(), ENGLISH, media_end_ms=end_ms)

    rss_loaded = _peak_rss_mb()
    direct()  # warm-up: caches and allocator settle before either path is timed
    rss_warm = _peak_rss_mb()
    # alternate the two paths and keep each one's faster round, so neither pays for a cold start or a busy moment
    runs: dict[str, list[tuple[Any, float, float]]] = {"direct": [], "service": []}
    for _ in range(rounds):
        runs["direct"].append(_timed(direct))
        runs["service"].append(_timed(service))
    raw, raw_wall, raw_cpu = min(runs["direct"], key=lambda r: r[2])
    cues, wall, cpu = min(runs["service"], key=lambda r: r[2])
    raw_cues = [
        Cue(id=f"s{k}", start_ms=round(s.start * 1000), end_ms=round(s.end * 1000), lines=(s.text.strip(),))
        for k, s in enumerate(raw)
    ]
    return {
        "audio_s": round(sample.duration_s, 2),
        "direct": {"wall_s": round(raw_wall, 2), "cpu_s": round(raw_cpu, 2)},
        "service": {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)},
        "overhead": {"wall": round(wall / raw_wall, 3), "cpu": round(cpu / raw_cpu, 3)},
        "realtime_factor": {
            "wall": round(wall / sample.duration_s, 3),
            "cpu": round(cpu / sample.duration_s, 3),
        },
        "wer": {
            "direct": round(float(jiwer.wer(_words(sample.text), _words(" ".join(s.text for s in raw)))), 4),
            "service": round(
                float(jiwer.wer(_words(sample.text), _words(" ".join(c.text for c in cues)))), 4
            ),
        },
        "rounds": rounds,
        # the process's peak: with the model loaded, after a direct warm-up, after both paths' rounds
        "peak_rss_mb": {
            "model_loaded": round(rss_loaded, 1),
            "after_direct_warmup": round(rss_warm, 1),
            "after_both_paths": round(_peak_rss_mb(), 1),
        },
        "violations": {
            "raw_segments": _nonzero(summary(check(raw_cues, ENGLISH, media_end_ms=end_ms))),
            "delivered": _nonzero(summary(check(cues, ENGLISH, media_end_ms=end_ms))),
        },
    }


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {rule: n for rule, n in counts.items() if n}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(prog="python -m captions.bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of each path (default 2)")
    args = parser.parse_args(argv)
    numbers = run(CaptionsSettings.from_env(), rounds=max(1, args.rounds))
    if args.out:
        args.out.write_text(json.dumps(numbers, indent=2))
    if args.json:
        print(json.dumps(numbers))
        return 0
    print(
        f"audio {numbers['audio_s']} s (espeak-ng, known text); best of {numbers['rounds']} alternating rounds"
    )
    for path in ("direct", "service"):
        print(f"  {path:8} wall {numbers[path]['wall_s']:6.2f} s  cpu {numbers[path]['cpu_s']:6.2f} s")
    print(
        f"  overhead (service/direct): wall x{numbers['overhead']['wall']}, cpu x{numbers['overhead']['cpu']}"
    )
    print(
        f"  realtime factor: wall {numbers['realtime_factor']['wall']}, cpu {numbers['realtime_factor']['cpu']}"
    )
    print(f"  WER: direct {numbers['wer']['direct']:.2%}, service {numbers['wer']['service']:.2%}")
    print(f"  peak RSS: {numbers['peak_rss_mb']}")
    print(
        f"  style violations: raw segments {numbers['violations']['raw_segments']}, delivered {numbers['violations']['delivered']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
