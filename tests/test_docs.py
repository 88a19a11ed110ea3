"""The documentation's code runs as written."""
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("page", ["extending.md"])
def test_code_blocks_run_in_order(page, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    assert blocks, f"{page} has no python code blocks"
    namespace = {}
    for block in blocks:
        exec(compile(block, f"{page}", "exec"), namespace)
    assert "softplus checks out" in capsys.readouterr().out
