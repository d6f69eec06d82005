"""A toy catalogue shared by the model tests."""

import pytest
import torch

from research.data.schema import DatasetMeta

NUM_ITEMS, NUM_CATEGORIES, NUM_BEHAVIORS = 40, 5, 4


@pytest.fixture
def meta() -> DatasetMeta:
    item_category = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(NUM_ITEMS) % NUM_CATEGORIES + 1])
    return DatasetMeta(
        name="toy", num_items=NUM_ITEMS, num_categories=NUM_CATEGORIES, num_behaviors=NUM_BEHAVIORS,
        item_category=item_category, train_item_counts=torch.arange(NUM_ITEMS + 1),
        train_category_counts=torch.arange(NUM_CATEGORIES + 1), category_names=tuple("abcde"),
    )
