"""Run tutorials, each followed by its solutions, as plain Python (no Jupyter needed):

    python tutorials/solutions 04          # tutorial 04, then solutions/04_*.py in its namespace
    python tutorials/solutions             # every step in turn

The solutions use the tutorial's names (``U``, ``check_exercise_1`` ...), so they run after
it, in the same namespace: here, or in a notebook by pasting them at its end (the course
website shows them run that way, collapsed under each exercise).
"""
import runpy
import sys
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent
TUTORIALS = SOLUTIONS.parent
sys.path.insert(0, str(TUTORIALS))          # import _course, as from tutorials/

for number in sys.argv[1:] or sorted(p.name[:2] for p in TUTORIALS.glob("[0-9][0-9]_*.py")):
    (tutorial,) = TUTORIALS.glob(f"{number}_*.py")
    namespace = runpy.run_path(str(tutorial), run_name="__main__")
    solution = SOLUTIONS / tutorial.name
    if solution.exists():
        exec(compile(solution.read_text(), str(solution), "exec"), namespace)
