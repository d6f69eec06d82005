import json

import yaml

from research.report import collect, markdown


def test_report_collects_every_run_and_states_the_protocol(tmp_path):
    for i, (model, value) in enumerate([("GRU4Rec", 0.25), ("SASRec", 0.5)]):
        run = tmp_path / str(i)
        run.mkdir()
        config = {"model": {"_target_": f"research.models.x.{model}"}, "task": {"name": "next_item"},
                  "data": {"name": "toy"}, "eval": {"mask_history": True}}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        (run / "metrics.json").write_text(json.dumps({"test/ndcg@10": value, "time/train_epoch_seconds": 1.5,
                                                       "test/category_acc@1": 0.5}))
    (tmp_path / "1" / "run_info.json").write_text(json.dumps({"device": "cpu"}))  # runs before provenance: "?"
    rows = collect([tmp_path])
    assert [r["model"] for r in rows] == ["GRU4Rec", "SASRec"]
    table = markdown(rows, ("test/ndcg@10", "test/hit@10"))
    assert "| SASRec | next_item | toy | 0.5000 | 1.5 | cpu |" in table
    assert "| GRU4Rec | next_item | toy | 0.2500 | 1.5 | ? |" in table
    assert "test/hit@10" not in table  # metrics no run has are left out
    assert "history masking: True" in table
    assert "history masking" not in markdown(rows, ("test/category_acc@1",))
