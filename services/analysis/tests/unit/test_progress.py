"""A batch's pace and the ETA its job's stage shows."""

from __future__ import annotations

from analysis.models import THROUGHPUT_WINDOW_S, batch_pace, progress_stage, time_left


def test_the_pace_is_measured_over_the_window_or_since_the_batch_began() -> None:
    # 120 items ended in the last 5 minutes of a batch running for an hour: 24 a minute, 1,176 left → 49 min
    per_min, eta = batch_pace(remaining=1176, ended_recently=120, running_s=3600)
    assert per_min == 24 and eta == 1176 * 60 / 24
    # a batch 30 s old that ended 10 items: 20 a minute, not 2
    assert batch_pace(remaining=40, ended_recently=10, running_s=30)[0] == 20
    assert batch_pace(remaining=5, ended_recently=0, running_s=10) == (0, None)  # nothing ended: no ETA yet
    assert batch_pace(remaining=0, ended_recently=3, running_s=THROUGHPUT_WINDOW_S * 2)[1] == 0


def test_the_stage_carries_the_eta_in_words() -> None:
    assert progress_stage(ended=1200, total=2376, eta_s=130) == "1,200 of 2,376 analysed · about 2 min left"
    assert progress_stage(ended=3, total=60, eta_s=None) == "3 of 60 analysed"
    assert progress_stage(ended=60, total=60, eta_s=0) == "60 of 60 analysed"
    assert time_left(12) == "under a minute left" and time_left(3900) == "about 1 h 5 min left"
