"""Build the course website: every ``tutorials/NN_*.py`` executed as a notebook, as HTML.

    pip install -e ".[course]"
    python tutorials/build_site.py OUT            # full mode, as a learner runs the course
    python tutorials/build_site.py OUT --fast     # MINSTN_FAST=1: what CI builds (a few minutes)
    python -m http.server -d OUT                  # or open OUT/index.html in a browser

How it works, in the order it happens:

1. each step's ``# %%`` file becomes a notebook (jupytext), and its solutions
   (``tutorials/solutions/NN_*.py``, same cell format) are appended to it;
2. the notebook runs in a fresh Jupyter kernel (nbclient) started in ``tutorials/``, so
   ``import _course`` works and ``_course.savefig`` shows each figure inline;
3. each cell is rendered to HTML (nbconvert's Markdown filter, which leaves ``$...$`` to
   MathJax; Pygments for code); the solutions go into collapsed boxes after their
   exercise; the PNG outputs become files beside the page;
4. the pages get navigation, the downloads (``.py``, a learner's ``.ipynb`` without
   outputs, the solutions, ``_course.py``, all of it in ``course.zip``) and MathJax, served
   from the site itself: nothing is loaded from the internet.

``OUT/build.json`` records, per step, its run time, the figures it wrote, the images
its notebook showed and whether its checks passed; ``OUT/executed/`` keeps the executed
notebooks (the tests read both). Exit status 1 when a step failed.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
import re
import shutil
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COURSE_TITLE = "minstn: Spatial Transformer Networks from scratch"


def steps() -> list[Path]:
    """Every numbered step, in order: a new ``NN_name.py`` is picked up by itself."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def solution_file(step: Path) -> Path | None:
    path = HERE / "solutions" / step.name
    return path if path.exists() else None


# --- 1. notebooks -------------------------------------------------------------------------

EXERCISE = re.compile(r"^#{2,3} Exercise (\d+)", re.M)   # a heading that starts an exercise


def learner_notebook(step: Path):
    """The step as a notebook, without outputs and without solutions (what a learner downloads)."""
    import jupytext

    nb = jupytext.read(step)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    return nb


def course_notebook(step: Path, solutions: bool = True):
    """The learner's notebook with the solutions appended, each cell tagged with its exercise."""
    import jupytext

    nb = learner_notebook(step)
    solution = solution_file(step)
    if solution is None or not solutions:
        return nb
    exercise = None
    for cell in jupytext.read(solution).cells:
        match = EXERCISE.search(cell.source) if cell.cell_type == "markdown" else None
        exercise = int(match.group(1)) if match else exercise
        if exercise is not None:                  # the file's title cell is not shown
            cell.metadata["solution"] = exercise
            nb.cells.append(cell)
    return nb


def execute(nb, env: dict, timeout: int) -> str | None:
    """Run the notebook in a fresh kernel in tutorials/; returns the error, or None."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    try:
        client.execute(env=env)
    except CellExecutionError as error:
        return str(error)
    return None


def stream_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.output_type == "stream")


def run_step(step: Path, out: Path, fast: bool, timeout: int, solutions: bool = True) -> dict:
    """Execute one step (with its solutions) and record what it did."""
    import nbformat

    figures = out / "_figures" / step.stem
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir(parents=True)
    env = dict(os.environ, MINSTN_FIGURES=str(figures), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env["MINSTN_FAST"] = "1" if fast else "0"
    nb = course_notebook(step, solutions)
    start = time.perf_counter()
    error = execute(nb, env, timeout)
    seconds = time.perf_counter() - start
    (out / "executed").mkdir(exist_ok=True)
    nbformat.write(nb, out / "executed" / f"{step.stem}.ipynb")
    text = stream_text(nb)
    number = step.name[:2]
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    return {"step": number, "name": step.stem, "title": step_title(step), "seconds": round(seconds, 1),
            "error": error, "passed": f"{number}: all checks passed" in text,
            "solutions_passed": f"{number} solutions: all checks passed" in text,
            "exercises": exercise_numbers(nb), "figures": sorted(p.name for p in figures.glob("*.png")),
            "images": len(images)}


def exercise_numbers(nb) -> list[int]:
    return sorted({int(m.group(1)) for c in nb.cells if c.cell_type == "markdown" and "solution" not in c.metadata
                   for m in [EXERCISE.search(c.source)] if m})


def step_title(step: Path) -> str:
    first = step.read_text().split("\n# %%")[0]
    match = re.search(r"^# # (.+)$", first, re.M)
    return match.group(1).strip() if match else step.stem


def step_facts(step: Path) -> dict:
    """The line under each step's title: '**Study time** ... · **Prerequisites** ... · **Paper** ...'."""
    first = step.read_text().split("\n# %%")[0]
    return {k: v.strip().rstrip("·").strip() for k, v in
            re.findall(r"\*\*(Study time|Prerequisites|Paper)\*\*:?\s*([^·\n]*)", first)}


# --- 2. cells to HTML ---------------------------------------------------------------------

def markdown(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


def code_html(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(), HtmlFormatter(cssclass="highlight"))


def outputs_html(cell, page_stem: str, files: dict) -> str:
    from nbconvert.filters import ansi2html

    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            kind = "stderr" if o.name == "stderr" else "stdout"
            parts.append(f'<pre class="output {kind}">{html.escape(o.text)}</pre>')
        elif o.output_type == "error":
            parts.append(f'<pre class="output error">{ansi2html(chr(10).join(o.traceback))}</pre>')
        elif "image/png" in o.get("data", {}):
            name = f"{page_stem}_files/figure_{len(files) + 1}.png"
            files[name] = base64.b64decode(o.data["image/png"])
            parts.append(f'<figure class="output"><img src="{name}" alt="figure {len(files)}"></figure>')
        elif "text/plain" in o.get("data", {}):
            parts.append(f'<pre class="output result">{html.escape(o.data["text/plain"])}</pre>')
    return "".join(parts)


def cells_html(nb, page_stem: str, files: dict) -> str:
    """The tutorial's cells, with each exercise's solution collapsed after that exercise."""
    def one(cell):
        if cell.cell_type == "markdown":
            return f'<div class="cell markdown">{markdown(cell.source)}</div>'
        return (f'<div class="cell code">{code_html(cell.source)}'
                f'{outputs_html(cell, page_stem, files)}</div>')

    solutions: dict[int, list] = {}
    for cell in nb.cells:
        if "solution" in cell.metadata:
            solutions.setdefault(cell.metadata["solution"], []).append(cell)
    body, current = [], None

    def close_exercise():
        if current in solutions:
            inner = "".join(one(c) for c in solutions[current])
            body.append(f'<details class="solution"><summary>Solution to exercise {current} '
                        f'(and a wrong answer the check rejects)</summary>{inner}</details>')

    for cell in (c for c in nb.cells if "solution" not in c.metadata):
        match = EXERCISE.search(cell.source) if cell.cell_type == "markdown" else None
        if match:
            close_exercise()
            current = int(match.group(1))
        body.append(one(cell))
    close_exercise()
    return "\n".join(body)


# --- 3. pages -----------------------------------------------------------------------------

STYLE = """
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; }
header { background: #24364b; color: #fff; padding: .6em 1.2em; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
.layout { display: flex; max-width: 1180px; margin: 0 auto; }
nav.steps { flex: 0 0 230px; padding: 1em; border-right: 1px solid #ddd; font-size: 14px; }
nav.steps ul { padding-left: 0; list-style: none; } nav.steps li { margin: .35em 0; }
nav.steps .current { font-weight: 700; }
main { flex: 1; min-width: 0; padding: 1em 2em 3em; }
.downloads { background: #f3f6f9; border: 1px solid #d8e0e8; padding: .5em .9em; font-size: 14px; }
.cell.code { margin: .8em 0; }
.highlight { background: #f6f8fa; border-left: 3px solid #7a9cc6; padding: .1em .8em; overflow-x: auto; }
.highlight pre, pre.output { margin: 0; font: 13px/1.45 ui-monospace, Menlo, Consolas, monospace; }
pre.output { padding: .3em .8em; white-space: pre-wrap; }
pre.stderr { background: #fff4e5; } pre.error { background: #fde8e8; }
figure.output { margin: .5em 0; } figure.output img { max-width: 100%; height: auto; }
details.solution { border: 1px solid #c7d9c1; background: #f7fbf5; padding: .3em .9em; margin: 1em 0; }
details.solution summary { cursor: pointer; font-weight: 600; color: #2f6b24; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; vertical-align: top; }
.pager { display: flex; justify-content: space-between; margin-top: 2.5em; border-top: 1px solid #ddd; padding-top: 1em; }
.anchor-link { visibility: hidden; margin-left: .3em; text-decoration: none; }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link { visibility: visible; }
code { background: #f3f3f3; padding: 0 .2em; }
"""

MATHJAX = """<script>
window.MathJax = { tex: { inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true },
                   options: { enableMenu: false } };
</script>
<script defer src="_static/mathjax/tex-chtml.js"></script>"""


def page(title: str, body: str, nav: list[tuple[str, str]], current: str | None,
         prev_next: tuple | None = None) -> str:
    from pygments.formatters import HtmlFormatter

    items = "".join(f'<li{" class=current" if href == current else ""}><a href="{href}">{html.escape(text)}</a></li>'
                    for href, text in nav)
    pager = ""
    if prev_next:
        prev, nxt = prev_next
        pager = ('<div class="pager">' + (f'<a href="{prev[0]}">&larr; {html.escape(prev[1])}</a>' if prev else "<span></span>")
                 + (f'<a href="{nxt[0]}">{html.escape(nxt[1])} &rarr;</a>' if nxt else "<span></span>") + "</div>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>{STYLE}{HtmlFormatter().get_style_defs(".highlight")}</style>
{MATHJAX}
</head><body>
<header><a href="index.html">{html.escape(COURSE_TITLE)}</a></header>
<div class="layout"><nav class="steps"><ul>{items}</ul></nav>
<main>{body}{pager}</main></div>
</body></html>
"""


def mathjax_dir() -> Path:
    """MathJax 3 from the ``sphinx-mathjax-offline`` package (the ``course`` extra), else Debian's."""
    try:
        files = metadata.files("sphinx-mathjax-offline") or []
        script = next(f for f in files if str(f).endswith("static/mathjax/tex-chtml.js"))
        return Path(script.locate()).parent
    except (metadata.PackageNotFoundError, StopIteration):
        pass
    debian = Path("/usr/share/javascript/mathjax")
    if (debian / "tex-chtml.js").exists():
        return debian
    raise SystemExit("MathJax not found: pip install -e '.[course]' (it brings sphinx-mathjax-offline)")


def copy_mathjax(out: Path) -> None:
    source, target = mathjax_dir(), out / "_static" / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy(source / "tex-chtml.js", target)
    for folder in ("output/chtml/fonts/woff-v2", "input/tex/extensions"):   # fonts; packages autoloaded
        shutil.copytree(source / folder, target / folder)


def readme_sections(names: list[str]) -> str:
    """The named sections of the project README, verbatim (the REPL walkthrough)."""
    text = (ROOT / "README.md").read_text()
    chunks = re.split(r"(?m)^(?=#{2,3} )", text)
    picked = "\n".join(c for c in chunks if any(c.startswith(f"## {n}") or c.startswith(f"### {n}") for n in names))
    return picked.replace("```python\n>>>", "```pycon\n>>>")     # a session: prompts, then what it printed


def front_page(records: list[dict], fast: bool) -> str:
    """The teacher's page (tutorials/README.md), with this build's measured run times."""
    rows = []
    for r in records:
        facts = step_facts(HERE / f"{r['name']}.py")
        title = r["title"].split("·", 1)[-1].strip()
        rows.append(f"| {r['step']} | [{title}]({r['name']}.html) | {facts.get('Study time', '')} | "
                    f"{facts.get('Prerequisites', '')} | {r['seconds']:.0f} s |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = ("## The steps in this build\n\n| step | title | study time | prerequisites | ran in |\n"
             "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) +
             f"\n\nRun times measured when this site was built ({'fast' if fast else 'full'} mode, "
             f"{os.cpu_count()} cores, load average {load}).\n")
    readme = (HERE / "README.md").read_text()
    readme = re.sub(r"\]\((\d\d_[A-Za-z0-9_]+)\.py\)", r"](\1.html)", readme)   # links to the pages
    readme = readme.replace("](../README.md)", "](repl.html)")
    title, _, rest = readme.partition("\n")
    return markdown(title + "\n\n" + table + rest)


def build(out: Path, fast: bool, only: list[str] | None, timeout: int, solutions: bool = True) -> list[dict]:
    import jupytext
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    copy_mathjax(out)
    selected = [s for s in steps() if not only or s.name[:2] in only]
    nav = [("index.html", "Teacher's page"), ("repl.html", "The REPL walkthrough")] + \
          [(f"{s.stem}.html", step_title(s)) for s in selected]
    downloads = out / "downloads"
    (downloads / "solutions").mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "_course.py", downloads)
    records = []
    for i, step in enumerate(selected):
        print(f"[{step.name}] running{' (fast mode)' if fast else ''} ...", flush=True)
        record = run_step(step, out, fast, timeout, solutions)
        records.append(record)
        print(f"[{step.name}] {record['seconds']:.1f} s, {len(record['figures'])} figures, {record['images']} images"
              f"{', FAILED' if record['error'] or not record['passed'] else ''}", flush=True)
        shutil.copy(step, downloads)
        nbformat.write(learner_notebook(step), downloads / f"{step.stem}.ipynb")
        links = [f'<a href="downloads/{step.stem}.ipynb" download>notebook (.ipynb)</a>',
                 f'<a href="downloads/{step.name}" download>script (.py)</a>',
                 '<a href="downloads/_course.py" download>_course.py</a> (keep it beside the file)']
        if solution_file(step) and solutions:
            shutil.copy(solution_file(step), downloads / "solutions")
            links.append(f'<a href="downloads/solutions/{step.name}" download>solutions (.py)</a>')
        files: dict[str, bytes] = {}
        executed = nbformat.read(out / "executed" / f"{step.stem}.ipynb", as_version=4)
        body = (f'<p class="downloads">Download: {" · ".join(links)} · <a href="course.zip">everything</a></p>'
                + cells_html(executed, step.stem, files))
        shutil.rmtree(out / f"{step.stem}_files", ignore_errors=True)
        for name, data in files.items():
            (out / name).parent.mkdir(exist_ok=True)
            (out / name).write_bytes(data)
        prev = nav[i + 1] if i > 0 else nav[1]
        nxt = nav[i + 3] if i + 3 < len(nav) else None
        (out / f"{step.stem}.html").write_text(page(record["title"], body, nav, f"{step.stem}.html", (prev, nxt)))
    walkthrough = readme_sections(["A first look in the REPL", "Five minutes at the REPL"])
    (out / "repl.html").write_text(page("The REPL walkthrough", markdown(walkthrough), nav, "repl.html",
                                        (nav[0], nav[2] if len(nav) > 2 else None)))
    (out / "index.html").write_text(page(COURSE_TITLE, front_page(records, fast), nav, "index.html",
                                         (None, nav[1])))
    with zipfile.ZipFile(out / "course.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(downloads.rglob("*")):
            if path.is_file():
                zf.write(path, Path("minstn-course") / path.relative_to(downloads))
    summary = {"fast": fast, "solutions": solutions, "cores": os.cpu_count(), "load": os.getloadavg(), "python": sys.version.split()[0],
               "jupytext": jupytext.__version__, "steps": records}
    (out / "build.json").write_text(json.dumps(summary, indent=1))
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the site to")
    parser.add_argument("--fast", action="store_true", help="MINSTN_FAST=1: smaller data, fewer epochs")
    parser.add_argument("--steps", help="only these steps, e.g. 01,04 (navigation lists only them)")
    parser.add_argument("--no-solutions", action="store_true", help="leave the solutions out (a site to hand out)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell before giving up")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    solutions = not args.no_solutions
    shutil.rmtree(args.out / "downloads", ignore_errors=True)
    records = build(args.out, args.fast, args.steps.split(",") if args.steps else None, args.timeout, solutions)
    failed = [r["name"] for r in records if r["error"] or not r["passed"] or
              (solutions and r["exercises"] and not r["solutions_passed"])]
    print(f"site written to {args.out}/index.html in {time.perf_counter() - start:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    for r in records:
        if r["error"]:
            print(f"--- {r['name']} ---\n{r['error'][-3000:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
