from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Iterator

import pytest

import ferrymq

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "q.db"


@pytest.fixture
def q(db: pathlib.Path) -> Iterator[ferrymq.Queue]:
    queue = ferrymq.Queue(db)
    yield queue
    queue.close()


def run_python(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh Python process with this interpreter."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def rust_binary(name: str) -> pathlib.Path:
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / name
    assert path.exists(), f"{path} is missing: build it with `cargo build -p ferrymq-examples`"
    return path
