"""Catalogue of public torch/optax/jax API names, used to reject misspelt map entries.

The catalogue is a text file shipped with the package (``known_apis.txt``), generated from the
pinned torch/optax/jax by ``python -m ml_switcheroo.spec.known_apis`` and kept in sync by a test.
Names under a catalogued namespace (``CATALOGUED``) must appear in it; other dotted names (a
user's own library) are accepted as written.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from functools import cache
from pathlib import Path

CATALOGUE = Path(__file__).with_name("known_apis.txt")

# module -> also list public methods of its classes
CATALOGUED_MODULES: dict[str, bool] = {
    "torch.optim": True,
    "torch.optim.optimizer": True,
    "torch.optim.lr_scheduler": True,
    "torch.optim.swa_utils": True,
    "torch.nn.utils": False,
    "torch.nn.utils.clip_grad": False,
    "torch.amp": True,
    "torch.cuda.amp": True,
    "optax": False,
    "optax.contrib": False,
    "optax.schedules": False,
    "optax.transforms": False,
    "optax.tree": False,
    "jax.numpy": False,
}
EXTRA_NAMES = (
    "torch.Tensor.backward",
    "torch.autograd.grad",
    "torch.autograd.backward",
    # instance attributes, which dir() of the class does not list
    "torch.optim.Optimizer.param_groups",
    "torch.optim.Optimizer.state",
    "torch.optim.Optimizer.defaults",
    "torch.optim.lr_scheduler.LRScheduler.last_epoch",
    "torch.optim.lr_scheduler.LRScheduler.base_lrs",
)


@cache
def known_names() -> frozenset[str]:
    return frozenset(CATALOGUE.read_text(encoding="utf-8").split())


def is_catalogued(name: str) -> bool:
    """Whether ``name`` lies in a namespace the catalogue covers."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in CATALOGUED_MODULES)


def check_name(name: str) -> str | None:
    """None if ``name`` is known or uncatalogued, else an error message with a suggestion."""
    if not is_catalogued(name) or name in known_names():
        return None
    same_letters = [known for known in known_names() if known.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, known_names(), n=1, cutoff=0.8)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return f"unknown API `{name}`{hint}"


def generate() -> list[str]:
    """Import the installed torch/optax/jax and list their public names."""
    names: set[str] = set(EXTRA_NAMES)
    for module_name, with_methods in CATALOGUED_MODULES.items():
        module = importlib.import_module(module_name)
        names.add(module_name)
        for attr in dir(module):
            if attr.startswith("_"):
                continue
            names.add(f"{module_name}.{attr}")
            value = getattr(module, attr)
            if with_methods and inspect.isclass(value):
                for method in dir(value):
                    if not method.startswith("_"):
                        names.add(f"{module_name}.{attr}.{method}")
    return sorted(names)


def main() -> None:
    names = generate()
    CATALOGUE.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"wrote {len(names)} names to {CATALOGUE}", file=sys.stderr)


if __name__ == "__main__":
    main()
