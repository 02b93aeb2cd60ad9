"""The README's Python example runs as written, on the bundled model."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_python_example_is_short_and_runs(tmp_path, monkeypatch, capsys):
    code = python_example()
    assert len(code.strip().splitlines()) <= 15
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("['dates' 'sorting']")
    assert "binary:rescore=10" in printed
    assert (tmp_path / "vecdial-data" / "docs" / "CURRENT").is_file()
