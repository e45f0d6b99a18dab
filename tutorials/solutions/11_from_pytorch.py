# %% [markdown]
# # Solutions to 11 · From PyTorch to minstn
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 11`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# Only the import lines change: `interop.minstn_imports` does exactly that (and keeps
# the line numbers, so a traceback still points at the right line).

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError

check_exercise_1(interop.minstn_imports)
print(interop.minstn_imports(SNIPPET))

# %% [markdown]
# The source unchanged runs on PyTorch where it is installed (and fails to import where
# it is not): either way `loss` is not minstn's.

# %%
rejects(check_exercise_1, lambda source: source if torch is not None else "loss = 0.0")

# %% [markdown]
# ### Exercise 2


# %%
def renamed(state_dict, old, new):
    return {(new + key[len(old):] if key.startswith(old + ".") else key): value
            for key, value in state_dict.items()}


check_exercise_2(renamed)

# %% [markdown]
# Renaming only the weight leaves `fc.bias` unexpected and `head.bias` missing:

# %%
rejects(check_exercise_2, lambda sd, old, new: {k.replace(f"{old}.weight", f"{new}.weight"): v for k, v in sd.items()})
print("11 solutions: all checks passed")
