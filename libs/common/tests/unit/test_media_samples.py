"""Generated media samples: what make_video promises is what a reader finds in the file."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from common.testing.media import make_video


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_rotation_is_written_as_a_display_matrix_that_reads_back(tmp_path: Path, degrees: int) -> None:
    path = make_video(seconds=0.4, width=160, height=96, audio=False, rotate=degrees, directory=tmp_path)
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    assert (frame.width, frame.height) == (160, 96)  # coded size; players turn it
    assert round(frame.rotation) % 360 == degrees


def test_other_codecs_and_containers(tmp_path: Path) -> None:
    path = make_video(seconds=0.4, width=160, height=96, vcodec="mpeg4", audio=False, directory=tmp_path)
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"
        assert sum(1 for _ in c.decode(video=0)) == 10
