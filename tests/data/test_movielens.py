"""MovieLens in both layouts: ratings become events, the first genre the category, users'
attributes profile columns; a bad line is reported by file, line and column."""

import pytest

from research.data import cache
from research.data.builders.movielens import NO_GENRE, MovieLensBuilder
from research.data.schema import BadInput


def flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


@pytest.fixture
def ml100k(tmp_path):
    root = tmp_path / "ml-100k"
    root.mkdir()
    (root / "u.data").write_text("1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n"
                                 "1\t30\t4\t881250952\n2\t30\t1\t881250953\n2\t20\t2\t881250954\n")
    (root / "u.item").write_bytes(  # latin-1 titles, as in the real file
        f"10|Caf\xe9 (1995)|01-Jan-1995||http://x|{flags(1, 5)}\n20|B (1996)|01-Jan-1996||http://y|{flags(8)}\n"
        f"30|C (1997)|01-Jan-1997||http://z|{flags()}\n".encode("latin-1"))
    (root / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return root


@pytest.fixture
def ml1m(tmp_path):
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "ratings.dat").write_text("1::10::5::978300760\n1::20::3::978300761\n1::10::4::978300762\n")
    (root / "movies.dat").write_text("10::Toy Story (1995)::Animation|Children's|Comedy\n"
                                     "20::Heat (1995)::Action|Crime\n")
    return root


def test_ml100k_events_first_genre_and_profiles(ml100k):
    raw = MovieLensBuilder(str(ml100k)).load()
    category = dict(zip(raw.events["item_id"].to_list(), raw.events["category_id"].to_list()))
    assert category == {10: 1, 20: 8, 30: NO_GENRE}  # Action (flag 1) before Comedy (5); no flag at all
    assert raw.info["items_without_genre"] == 1
    assert raw.users.sort("user_id").rows() == [(1, 24, 0, 1), (2, 53, 1, 0)]  # occupation codes by name
    data = cache.load_or_build(MovieLensBuilder(str(ml100k)), ml100k / "cache", min_user_events=3)
    assert data.meta["num_users"] == 2 and "age" in data.users.columns


def test_ml1m_dat_layout_without_users(ml1m):
    raw = MovieLensBuilder(str(ml1m)).load()
    assert raw.events.height == 3 and raw.users is None
    categories = dict(zip(raw.events["item_id"].to_list(), raw.events["category_id"].to_list()))
    assert categories[10] != categories[20]  # Animation vs Action


def test_a_bad_rating_line_is_reported(ml1m):
    (ml1m / "ratings.dat").write_text("1::10::5::978300760\n1::abc::3::978300761\n")
    with pytest.raises(BadInput, match=r"ratings.dat: line 2, column item_id: 'abc' is not an integer"):
        MovieLensBuilder(str(ml1m)).load()


def test_a_folder_without_ratings_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no u.data or ratings.dat"):
        MovieLensBuilder(str(tmp_path))
