"""The documentation's code runs as written."""
import pathlib
import re
import runpy

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


def learned_optimizer_example():
    """README's learned-optimizer example: its code, and the output it shows."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n([^`]*LearnedOptimizer\(model\.parameters\(\), \"mnist\"\)"
                      r"[^`]*)```\s*```text\n([^`]*)```", readme)
    assert match, "README.md has no learned-optimizer example followed by its output"
    return match.group(1), match.group(2)


def test_readme_learned_optimizer_example_prints_what_the_readme_shows(capsys):
    code, shown = learned_optimizer_example()
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown


def test_learned_vs_adam_example_prints_what_the_readme_shows(capsys, monkeypatch):
    _, shown = learned_optimizer_example()
    monkeypatch.setattr("sys.argv", ["learned_vs_adam.py"])
    runpy.run_path(str(ROOT / "examples" / "learned_vs_adam.py"), run_name="__main__")
    assert capsys.readouterr().out == shown
