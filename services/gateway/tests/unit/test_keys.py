"""The key ring: the active key signs, every key verifies, pruning only what no live token can use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt

from gateway.keys import MANIFEST, KeyRing, generate_key


def test_manifest_names_the_signer_and_all_keys_are_published(tmp_path: Path) -> None:
    first = generate_key(tmp_path)
    second = generate_key(tmp_path)
    ring = KeyRing(tmp_path)
    ring.load()
    assert ring.active.kid == second and ring.kids == {first, second}
    assert [k["kid"] for k in ring.jwks()["keys"]] == [second, first]
    token = ring.sign({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == second
    # pinning an older key through the manifest (rolling back a rotation)
    (tmp_path / MANIFEST).write_text(json.dumps({"active": first}))
    ring.load()
    assert ring.active.kid == first


def test_without_manifest_the_newest_file_signs(tmp_path: Path) -> None:
    old = generate_key(tmp_path, activate=False)
    new = generate_key(tmp_path, activate=False)
    os.utime(tmp_path / f"{old}.pem", (time.time() - 100, time.time() - 100))
    ring = KeyRing(tmp_path)
    ring.load()
    assert ring.active.kid == new


def test_unreadable_files_are_skipped(tmp_path: Path) -> None:
    good = generate_key(tmp_path)
    (tmp_path / "broken.pem").write_text("not a key")
    ring = KeyRing(tmp_path)
    ring.load()
    assert ring.kids == {good}


def test_prune_waits_for_old_tokens_to_expire(tmp_path: Path) -> None:
    old = generate_key(tmp_path)
    new = generate_key(tmp_path)
    ring = KeyRing(tmp_path)
    ring.load()
    assert ring.prunable(now=time.time(), token_ttl_s=3600) == []
    assert ring.prunable(now=time.time() + 3600 + 301, token_ttl_s=3600) == [old]
    ring.delete(old)
    ring.load()
    assert ring.kids == {new}


def test_prune_after_a_rollback_keeps_the_newer_key_until_its_tokens_expire(tmp_path: Path) -> None:
    old = generate_key(tmp_path)
    new = generate_key(tmp_path)
    long_ago = time.time() - 3 * 3600
    for kid in (old, new):  # both keys were made hours ago; `new` signed until the rollback just now
        os.utime(tmp_path / f"{kid}.pem", (long_ago, long_ago))
    (tmp_path / "keys.json").write_text(json.dumps({"active": old}))
    ring = KeyRing(tmp_path)
    ring.load()
    assert ring.active.kid == old
    assert ring.prunable(now=time.time(), token_ttl_s=3600) == []
    assert ring.prunable(now=time.time() + 3600 + 301, token_ttl_s=3600) == [new]


def _cli(*args: str, keys_dir: Path) -> dict[str, object]:
    env = {**os.environ, "GATEWAY_KEYS_DIR": str(keys_dir), "LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-m", "gateway", *args], env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_cli_rotate_and_prune(tmp_path: Path) -> None:
    first = generate_key(tmp_path)
    second = _cli("keys", "rotate", keys_dir=tmp_path)["active"]
    ring = KeyRing(tmp_path)
    ring.load()
    assert ring.active.kid == second and ring.kids == {first, second}
    # too early: tokens signed by the previous key may still be alive
    assert _cli("keys", "prune", keys_dir=tmp_path)["pruned"] == []
    assert len(list(tmp_path.glob("*.pem"))) == 2
