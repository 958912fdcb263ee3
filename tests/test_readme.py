"""The README's Python examples run as written, and print what their `# ->` comments say.

Convention in the README's ```python blocks: a `print(...)` line may end with
- `# -> TEXT`: the printed line must be exactly TEXT;
- `# -> (LABEL)`: not checked, remembered under LABEL (a value that depends on training);
- `# -> same as the LABEL`: must print exactly what the line labelled LABEL printed.
Prints without such a comment (IR dumps, ...) only have to run."""
import re
import sys
from pathlib import Path

import pytest

import jitflow as tf

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
EXPECTATION = re.compile(r"#\s*->\s*(.+?)\s*$")


def expectations(block: str) -> dict:
    """{line number in the block: expected text} for the block's `print(...)  # -> ...` lines."""
    return {number: match.group(1) for number, line in enumerate(block.splitlines(), 1)
            if "print(" in line for match in [EXPECTATION.search(line)] if match}


def run_block(block: str, name: str) -> dict:
    """Executes `block`; returns {line number: [what each print on that line wrote]}."""
    printed: dict = {}

    def recording_print(*args, sep=" ", end="\n", file=None, flush=False):
        text = sep.join(str(a) for a in args)
        if file is None:
            printed.setdefault(sys._getframe(1).f_lineno, []).append(text)
        print(*args, sep=sep, end=end, file=file, flush=flush)
    exec(compile(block, name, "exec"), {"print": recording_print})
    return printed


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_and_prints_what_it_says(index):
    tf.reset_default_graph()
    printed = run_block(BLOCKS[index], f"README.md block {index}")
    labelled = {}
    for number, expected in expectations(BLOCKS[index]).items():
        assert number in printed, f"README block {index} line {number} printed nothing"
        got = printed[number][-1]
        if expected.startswith("(") and expected.endswith(")"):
            labelled[expected[1:-1]] = got
        elif expected.startswith("same as the "):
            label = expected[len("same as the "):]
            assert got == labelled[label], f"README block {index} line {number}: {got!r} != {label} {labelled[label]!r}"
        else:
            assert got == expected, f"README block {index} line {number}: printed {got!r}, the README says {expected!r}"


def test_readme_states_outputs():
    """The convention is in use: the API tour's outputs are checked, not just executed."""
    assert sum(len(expectations(block)) for block in BLOCKS) >= 8
