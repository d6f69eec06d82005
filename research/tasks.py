"""What is predicted and what early stopping watches. One encoder, several heads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str  # next_item | next_category | multi_task | ctr (matched against model.supported_tasks)
    item_weight: float  # weight of the item loss (0: no item head trained, no item metrics)
    category_weight: float  # weight of the category loss (0: categories derived from item scores)
    monitor: str  # validation metric for checkpointing / early stopping
    mode: str = "max"
    examples: str = "sequence"  # what a data row is: "sequence" (next events) or "ctr" (target + label)

    def __post_init__(self):
        if self.examples == "sequence" and self.item_weight <= 0 and self.category_weight <= 0:
            raise ValueError(f"task {self.name}: item_weight or category_weight must be > 0")


class IncompatibleConfig(ValueError):
    """A configuration that cannot run; entry points print its one line and exit."""


def check_supported(model: type | object, task: str) -> None:
    """One line naming the model, the task and what the model does support."""
    if task not in model.supported_tasks:
        name = model.__name__ if isinstance(model, type) else type(model).__name__
        raise IncompatibleConfig(f"model {name} does not support task '{task}' "
                         f"(supported: {', '.join(sorted(model.supported_tasks))})")
