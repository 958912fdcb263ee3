"""The README's Python examples run as written."""
import re
from pathlib import Path

import pytest

import jitflow as tf

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, capsys):
    tf.reset_default_graph()
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {})
