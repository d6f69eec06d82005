"""Sequence models. Every model honours one small interface, so tests and entry points pick
up a new model from its config file alone:

    model = Model(meta=DatasetMeta, **hyper_parameters)
    model.supported_tasks : frozenset[str]      names of the tasks it can be trained/evaluated on
    model(batch) -> (B, L, H)                    a representation at every position; position t
                                                 depends only on events 0..t (causal)
    model.heads.item_logits(h) -> (..., N+1)     scores against every item (column 0 = padding, -inf)
    model.heads.category_logits(h) -> (..., C+1) scores of every category (column 0 = padding, -inf)
    model.heads.item_table -> (N+1, D) or None   item embeddings, for sampled losses

Batches hold left-padded (B, L) `items`, `categories`, `behaviors` (0 = padding).
"""

NEURAL_TASKS = frozenset({"next_item", "next_category", "multi_task"})
