"""The import-boundary contract (import-linter, configured in pyproject.toml) holds, and catches a violation."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from common import registry

ROOT = Path(__file__).resolve().parents[2]
SERVICES = registry.NAMES


def _config_text() -> str:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[importlinter]", "root_packages =", *[f"    {p}" for p in cfg["root_packages"]], ""]
    for i, c in enumerate(cfg["contracts"]):
        lines += [f"[importlinter:contract:{i}]", f"name = {c['name']}", f"type = {c['type']}"]
        for key in ("modules", "source_modules", "forbidden_modules"):
            if key in c:
                lines += [f"{key} =", *[f"    {m}" for m in c[key]]]
        lines.append("")
    return "\n".join(lines)


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--config", str(tree / ".importlinter"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_tree(tmp: Path) -> Path:
    tree = tmp / "tree"
    tree.mkdir()
    shutil.copytree(
        ROOT / "libs/common/common", tree / "common", ignore=shutil.ignore_patterns("__pycache__")
    )
    for svc in SERVICES:
        shutil.copytree(
            ROOT / "services" / svc / svc, tree / svc, ignore=shutil.ignore_patterns("__pycache__")
        )
    for client in (ROOT / "clients").glob("*/pyproject.toml"):  # the CLI: a client, under its own contract
        name = client.parent.name
        shutil.copytree(client.parent / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / ".importlinter").write_text(_config_text())
    return tree


def test_the_real_tree_keeps_the_contract(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_service_importing_another_service_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    (tree / "render" / "sneaky.py").write_text(
        "from billing import config  # a service reaching into another\n"
    )
    result = _lint(tree)
    assert result.returncode != 0
    assert "render.sneaky -> billing" in result.stdout or "render.sneaky" in result.stdout, result.stdout


def test_common_importing_a_service_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    (tree / "common" / "sneaky.py").write_text("import gateway\n")
    result = _lint(tree)
    assert result.returncode != 0 and "common.sneaky" in result.stdout, result.stdout
