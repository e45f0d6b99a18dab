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


def test_ci_runs_exactly_the_readme_test_command():
    """README's "two commands" give one test line; .ci/run ends with that same line."""
    text = README.read_text()
    section = text[text.index("## The two commands"):text.index("## A first look")]
    commands = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2 and commands[0].startswith("pip install -e . &&"), commands
    test_command = commands[1]
    assert test_command.startswith('pip install -e ".[dev]" &&') and "python -m pytest" in test_command
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test_command
