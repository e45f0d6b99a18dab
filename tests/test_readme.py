"""The REPL session shown in README.md runs and prints what it claims."""

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_repl_example_is_true():
    blocks = re.findall(r"```python\n(>>>.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no >>> example"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, {}, f"README block {i}", str(README), 0)
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README example lines printed something else"
