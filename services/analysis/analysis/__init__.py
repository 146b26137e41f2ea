"""Reelforge analysis service."""

import os

# yt-dlp's lazy extractor classes answer every attribute through a metaclass, and reading one page asks about 1,800
# of them (which extractor matches the URL; the generic extractor's search for embeds). The real classes cost about
# 1 s of CPU once, when yt_dlp is first imported (this must come before that), and save about 4 ms a page, a
# quarter of a page's CPU (docs/analysis.md, Benchmark). yt-dlp's own switch; a value set outside wins.
os.environ.setdefault("YTDLP_NO_LAZY_EXTRACTORS", "1")
