"""Amazon raw reviews + metadata, 2014 (Python-literal metadata) and 2018 (JSON lines), gzipped."""

import gzip
import json

import pytest

from research.data.builders.amazon_raw import NO_CATEGORY, AmazonRawBuilder
from research.data.schema import BadInput

REVIEWS = [{"reviewerID": "A1", "asin": "B01", "unixReviewTime": 1400000000, "overall": 5.0},
           {"reviewerID": "A1", "asin": "B02", "unixReviewTime": 1400000100, "reviewText": "it's \"fine\""},
           {"reviewerID": "A2", "asin": "B03", "unixReviewTime": 1400000200}]
META_2014 = ["{'asin': 'B01', 'title': \"Girl's Kit\", "
             "'categories': [['Beauty', 'Skin Care', 'Face'], ['Beauty', 'Tools']]}",
             "{'asin': 'B02', 'categories': [['Beauty', \"Men's Grooming\"]], 'salesRank': {'Beauty': 12}}",
             "{'asin': 'B03', 'categories': [['Beauty']]}"]
META_2018 = [{"asin": "B01", "category": ["Beauty", "Skin Care", "Face"], "main_cat": "Beauty"},
             {"asin": "B02", "category": ["Beauty", "Men's Grooming"]}, {"asin": "B03", "category": []}]


def gz(path, lines):
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


@pytest.mark.parametrize("release", ["2014", "2018"])
def test_reviews_become_events_and_a_category_level_the_category(tmp_path, release):
    gz(tmp_path / "reviews.json.gz", [json.dumps(r) for r in REVIEWS])
    gz(tmp_path / "meta.json.gz", META_2014 if release == "2014" else [json.dumps(m) for m in META_2018])
    raw = AmazonRawBuilder(str(tmp_path), "reviews.json.gz", "meta.json.gz").load()
    assert raw.events["user_id"].to_list() == ["A1", "A1", "A2"]
    assert raw.events["timestamp"].to_list() == [1400000000, 1400000100, 1400000200]
    assert raw.events["category_id"].to_list() == ["Skin Care", "Men's Grooming", NO_CATEGORY]
    assert raw.info["items_without_category"] == 1


def test_a_review_without_a_time_is_reported_by_line(tmp_path):
    gz(tmp_path / "reviews.json.gz", [json.dumps(REVIEWS[0]), json.dumps({"reviewerID": "A3", "asin": "B01"})])
    gz(tmp_path / "meta.json.gz", META_2014)
    with pytest.raises(BadInput, match=r"reviews.json.gz: line 2: no valid unixReviewTime \(1 such lines\)$"):
        AmazonRawBuilder(str(tmp_path), "reviews.json.gz", "meta.json.gz").load()
