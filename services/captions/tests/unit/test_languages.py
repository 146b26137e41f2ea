"""Which language speech-to-text is asked for."""

from __future__ import annotations

import pytest

from captions.errors import CaptionsError, Code
from captions.stt import spoken_language


@pytest.mark.parametrize(
    ("asked", "model"), [("auto", None), ("", None), ("en", "en"), ("en-US", "en"), ("KO", "ko")]
)
def test_a_language_is_the_model_s_code(asked: str, model: str | None) -> None:
    assert spoken_language(asked) == model


@pytest.mark.parametrize("asked", ["zz", "xx-YY", "english"])
def test_a_language_the_model_lacks_is_a_coded_refusal(asked: str) -> None:
    with pytest.raises(CaptionsError) as caught:
        spoken_language(asked)
    assert caught.value.code == Code.LANGUAGE_UNSUPPORTED
