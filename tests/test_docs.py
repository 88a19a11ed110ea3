"""The documentation's code runs as written."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_blocks(page):
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)


@pytest.mark.parametrize("page", ["README.md", "docs/extending.md", "docs/optimizers.md"])
def test_code_blocks_run_in_order(page):
    blocks = python_blocks(page)
    assert blocks, f"{page} has no python code blocks"
    namespace = {}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)


def test_extending_walkthrough_ends_with_its_checks_passing(capsys):
    namespace = {}
    for block in python_blocks("docs/extending.md"):
        exec(compile(block, "extending.md", "exec"), namespace)
    assert "softplus checks out" in capsys.readouterr().out
