"""Every error code a service can answer with is in a catalogue: its own ``StrEnum`` in ``models.py`` or common's.

The test lists every catalogue (``pytest -s`` prints them: the reference a client needs) and reads the source:
every literal code handed to a coded error (``CodedError``, ``Problem``, ``JobFailure``, ``NotFound``, ...) must be
catalogued, and every code has the ``<area>.<reason>`` shape (``<resource>.not_found`` for a missing resource).
"""

from __future__ import annotations

import ast
import importlib
import re
from enum import StrEnum
from pathlib import Path

import pytest

from common.errors import CommonCode
from common.jobs import ErrorCode

ROOT = Path(__file__).resolve().parents[2]
#: (service, its catalogue) — a new service adds its line
CATALOGUES = {
    "billing": "billing.models:BillingCode",
    "analysis": "analysis.models:AnalysisErrorCode",
    "captions": "captions.errors:Code",
    "gateway": "gateway.models:GatewayCode",
    "ingest": "ingest.models:IngestCode",
    "render": "render.models:RenderCode",
    "streaming": "streaming.models:StreamingCode",
}
SHARED: tuple[type[StrEnum], ...] = (CommonCode, ErrorCode)
#: constructors of coded errors, and which positional argument is the code
CODE_ARG = {
    "CodedError": 0,
    "JobFailure": 0,
    "TokenInvalid": 0,
    "TokenError": 0,
    "WebhookError": 0,
    "SignatureError": 0,
    "MediaError": 0,
    "Problem": 1,
}
SHAPE = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")


def _catalogue(ref: str) -> type[StrEnum]:
    module, name = ref.split(":")
    enum: type[StrEnum] = getattr(importlib.import_module(module), name)
    return enum


def _codes(enum: type[StrEnum]) -> set[str]:
    return {member.value for member in enum}


def _raised_codes(package: Path) -> dict[str, list[str]]:
    """Literal codes handed to coded errors in ``package`` (code → where), through module constants too."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        constants = {
            t.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name == "NotFound" and node.args and isinstance(node.args[0], ast.Constant):
                found.setdefault(f"{node.args[0].value}.not_found", []).append(where)
                continue
            index = CODE_ARG.get(name)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            code = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", ""))
            if isinstance(code, str):
                found.setdefault(code, []).append(where)
    return found


@pytest.mark.parametrize("service", sorted(CATALOGUES))
def test_every_code_a_service_raises_is_catalogued(service: str) -> None:
    known = _codes(_catalogue(CATALOGUES[service])).union(*(_codes(e) for e in SHARED))
    raised = _raised_codes(ROOT / "services" / service / service)
    missing = {code: where for code, where in raised.items() if code not in known}
    assert not missing, f"{service}: codes raised but not in its catalogue: {missing}"


def test_libs_common_raises_only_its_catalogued_codes() -> None:
    known = set().union(*(_codes(e) for e in SHARED))
    raised = _raised_codes(ROOT / "libs" / "common" / "common")
    # common.testing's fakes (e.g. the saga suite's trivial job) fail with codes of their own: not product codes
    missing = {
        code: where
        for code, where in raised.items()
        if code not in known and "{" not in code and not all("/common/testing/" in w for w in where)
    }
    assert not missing, f"libs/common: codes raised but not in CommonCode/ErrorCode: {missing}"


def test_the_catalogues_list_every_code_once_in_one_shape() -> None:
    listing: dict[str, list[str]] = {}
    for service, ref in sorted(CATALOGUES.items()):
        for code in sorted(_codes(_catalogue(ref))):
            listing.setdefault(code, []).append(service)
    for enum in SHARED:
        for code in sorted(_codes(enum)):
            listing.setdefault(code, []).append(f"common.{enum.__name__}")
    print("\n".join(f"{code:40} {', '.join(owners)}" for code, owners in sorted(listing.items())))
    bad = [code for code in listing if not SHAPE.match(code)]
    assert not bad, f"codes not in the <area>.<reason> shape: {bad}"
    not_found = [
        c for c in listing if "not_found" in c and c != CommonCode.NOT_FOUND and not c.endswith(".not_found")
    ]
    assert not not_found, f"a missing resource is <resource>.not_found: {not_found}"
    for service, ref in CATALOGUES.items():
        assert len(_codes(_catalogue(ref))) == len(_catalogue(ref)), f"{service} lists a code twice"
