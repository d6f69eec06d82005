"""Every option of every config group composes, and every `_target_` in it resolves to an
importable object. Parametrised over conf/, so a new file is checked without a new test."""

import pytest
from hydra.utils import _locate
from omegaconf import OmegaConf

from research.config import check
from tests.conftest import CONF, options

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra",))
CASES = [(group, option) for group in GROUPS for option in options(group)]
# options whose required values (marked ???) a user must give on the command line
REQUIRED = {("data", "amazon_s3rec"): ["data.name=Beauty", "data.root=/nonexistent"],
            ("data", "recbole"): ["data.name=toy", "data.root=/nonexistent"]}


def targets(node) -> list[str]:
    if OmegaConf.is_dict(node):
        found = [node["_target_"]] if "_target_" in node else []
        return found + [t for key in node if key != "_target_" for t in targets(node._get_node(key))]
    if OmegaConf.is_list(node):
        return [t for item in node for t in targets(item)]
    return []


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_config_option_composes_and_its_targets_exist(group, option, make_cfg):
    cfg = make_cfg(f"{group}={option}", *REQUIRED.get((group, option), []))
    check(cfg)  # the option's own values pass the settings rules
    found = targets(cfg)
    assert found, "the composed config should build objects"
    for target in found:
        _locate(target)  # raises ImportError with the dotted path when it does not exist
