"""The README's first screen shows what people touch: the page (a screenshot), the CLI and an API-key call; every
screenshot the docs link to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_SCREEN_LINES = 40


def test_the_readme_s_first_screen_shows_the_page_the_cli_and_an_api_key_call() -> None:
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:FIRST_SCREEN_LINES])
    assert re.search(r"!\[[^\]]*\]\(docs/screenshots/[\w-]+\.png\)", first), "a screenshot of the page"
    assert re.search(r"^reelforge (login|upload|jobs)", first, re.M), "the CLI"
    assert re.search(r'curl -H "Authorization: Bearer rf_live_[^"]*" http://\S+/api/v1/', first), (
        "an API-key call"
    )


def test_every_linked_screenshot_exists() -> None:
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for link in re.findall(r"\]\(((?:docs/)?screenshots/[^)]+)\)", doc.read_text()):
            target = (doc.parent / link) if doc.parent.name == "docs" else ROOT / link
            assert target.is_file(), f"{doc.relative_to(ROOT)} links to {link}, which does not exist"
