"""The README's Python example runs as written."""

from __future__ import annotations

import os
import pathlib
import re

from conftest import ROOT, run_python


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_readme_example_runs(tmp_path: pathlib.Path) -> None:
    example, orm, encrypted = python_blocks(ROOT / "README.md")
    assert len(example.strip().splitlines()) <= 12
    os.chdir(tmp_path)
    r = run_python(example)
    assert r.returncode == 0, r.stderr
    assert "paid order-42" in r.stdout
    r = run_python(orm + "\nprint([m.key for m in ferrymq.Queue('bank.db').find('payments', 'order-43')])")
    assert r.returncode == 0, r.stderr
    assert "['order-43']" in r.stdout
    r = run_python(encrypted)
    assert r.returncode == 0, r.stderr
    assert "[('rekey', 'SEC-12 yearly rotation')]" in r.stdout
    assert b"SQLite format 3" not in (tmp_path / "vault.db").read_bytes()


def test_the_binding_readme_examples_run(tmp_path: pathlib.Path) -> None:
    os.chdir(tmp_path)
    for block in python_blocks(ROOT / "bindings-python" / "README.md"):
        r = run_python(block)
        assert r.returncode == 0, f"{block}\n{r.stderr}"
