"""Look at the graph that ``backward`` will traverse.

``mt.graph(loss)`` returns the graph as an indented tree, one line per node,
with the op, its output shape, and the labels you gave your tensors
(``name=`` when creating them, or ``mt.graph(loss, names={"theta": theta})``)::

    SumBackward  ()
    └─ MulBackward  (2, 3)
       ├─ x  (2, 3) float64 leaf
       └─ w  (2, 3) float64 leaf

A node reached a second time is printed once more with ``(see above)``.
"""

from __future__ import annotations

from .autograd import Tensor

__all__ = ["graph"]


class GraphText(str):
    """A string that shows itself unquoted in the REPL."""

    def __repr__(self) -> str:
        return str(self)


def _label(t: Tensor, names: dict) -> str:
    return names.get(id(t)) or t.name or ""


def graph(root: Tensor, names: dict | None = None) -> GraphText:
    """Render the backward graph of ``root`` as an indented tree.

    Args:
        root: the tensor you would call ``backward`` on.
        names: optional ``{"label": tensor}`` to name tensors in the tree.
    """
    by_id = {id(t): label for label, t in (names or {}).items()}
    lines, seen = [], set()
    # Each stack entry: (tensor, prefix for this line, prefix for its children, connector)
    stack = [(root, "", "", "")]
    while stack:
        t, prefix, child_prefix, connector = stack.pop()
        label = _label(t, by_id)
        if t.grad_fn is None:
            kind = "leaf" if t.requires_grad else "constant"
            text = f"{label or kind}  {t.shape} {t.dtype}" + (f" {kind}" if label else "")
            lines.append(prefix + connector + text)
            continue
        node = t.grad_fn
        text = f"{node.name}  {t.shape}" + (f"  [{label}]" if label else "")
        if id(node) in seen:
            lines.append(prefix + connector + text + "  (see above)")
            continue
        seen.add(id(node))
        lines.append(prefix + connector + text)
        children = [c for c in node.inputs if c is not None and c.requires_grad]
        for k in reversed(range(len(children))):
            last = k == len(children) - 1
            stack.append(
                (children[k], child_prefix, child_prefix + ("   " if last else "│  "), "└─ " if last else "├─ ")
            )
    return GraphText("\n".join(lines))
