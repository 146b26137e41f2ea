"""Who and where an import is credited to, from yt-dlp's info dict (``fetch.attribution``)."""

from __future__ import annotations

import json

from ingest.fetch import attribution

from ..conftest import FIXTURES


def test_a_platform_video_is_credited_to_its_channel_on_the_platform() -> None:
    # a YouTube entry as yt-dlp returns it (recorded): extractor key "Youtube", channel and uploader named
    entry = json.loads((FIXTURES / "ytsearch5_cat_fails.json").read_text())["entries"][0]
    assert attribution(entry, entry["webpage_url"]) == ("Pet Central", "YouTube")
    tiktok = {"extractor_key": "TikTok", "uploader": "catlover", "channel": "Cat  Lover\n"}
    assert attribution(tiktok, "https://www.tiktok.com/@catlover/video/1") == ("Cat Lover", "TikTok")


def test_a_page_read_generically_is_credited_to_its_host() -> None:
    url = "https://www.example.com:8443/clips/1"
    # the generic extractor's stand-in "uploader" for a page without a creator is the page's domain: no creator
    generic = {
        "extractor_key": "Generic",
        "uploader": "www.example.com:8443",
        "webpage_url_domain": "www.example.com:8443",
    }
    assert attribution(generic, url) == ("", "example.com")
    assert attribution({"extractor_key": "HTML5MediaEmbed"}, url) == ("", "example.com")
    assert attribution({"extractor_key": "Generic", "uploader": "Mina Park"}, url) == (
        "Mina Park",
        "example.com",
    )
    assert attribution({}, url) == ("", "example.com")
