"""Fixtures of the console and metrics tests: the built `ferrymq` binary (FERRYMQ_BIN,
else target/debug/ferrymq) serving a file on a free loopback port."""

from __future__ import annotations

import os
import pathlib
import subprocess
from typing import Callable, Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def binary() -> str:
    path = os.environ.get("FERRYMQ_BIN") or str(ROOT / "target" / "debug" / "ferrymq")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: cargo build -p ferrymq-cli (or set FERRYMQ_BIN)")
    return path


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """serve(db, *args) starts `ferrymq serve db --port 0 *args`; returns its base URL."""
    children: list[subprocess.Popen[str]] = []

    def start(db: pathlib.Path, *args: str) -> str:
        child = subprocess.Popen(
            [binary(), "serve", str(db), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        first = child.stdout.readline()
        assert "http://127.0.0.1:" in first, first
        return first.split()[3]  # "ferrymq console on http://127.0.0.1:PORT/ (...)"

    yield start
    for child in children:
        child.kill()
        child.wait()
