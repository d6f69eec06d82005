"""MovieLens ratings as an event log, genres as categories (Harper & Konstan, TiiS 2015).

Two layouts, found by file name in `root`:
* ml-100k: `u.data` (user, item, rating, unix time; tab-separated), `u.item` (pipe-separated,
  the last 19 fields are genre flags), `u.user` (id|age|gender|occupation|zip), optional.
* ml-1m and later .dat files: `ratings.dat` (UserID::MovieID::Rating::Timestamp), `movies.dat`
  (MovieID::Title::Genre|Genre), `users.dat` (UserID::Gender::Age::Occupation::Zip), optional.
An item's category is its first listed genre (the flag order of u.item, the text order of
movies.dat); items without a genre get category -1. Every rating is one event (no behaviour
types); users' age, gender and occupation become profile attributes when the users file exists.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from research.data.builders.table import parse_integers, read_fields
from research.data.cache import file_digest
from research.data.schema import BadInput, RawLog

GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
               "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
               "War", "Western")
NO_GENRE = -1


class MovieLensBuilder:
    def __init__(self, root: str, name: str = "movielens"):
        self.root = Path(root).expanduser().resolve()
        self.name = name
        if (self.root / "u.data").is_file():
            self.layout, files = "100k", ("u.data", "u.item", "u.user")
        elif (self.root / "ratings.dat").is_file():
            self.layout, files = "dat", ("ratings.dat", "movies.dat", "users.dat")
        else:
            raise FileNotFoundError(f"{self.root}: no u.data or ratings.dat (data.root of a MovieLens copy)")
        self.ratings, self.items, self.users = (self.root / f for f in files)
        if not self.items.is_file():
            raise FileNotFoundError(f"{self.items}: not found (MovieLens genres)")

    def fingerprint(self) -> dict:
        files = [p for p in (self.ratings, self.items, self.users) if p.is_file()]
        return {"builder": "movielens", "layout": self.layout, **{p.name: file_digest(p) for p in files}}

    def load(self) -> RawLog:
        sep = "\t" if self.layout == "100k" else "::"
        fields = read_fields(self.ratings, {"user_id": 0, "item_id": 1, "timestamp": 3}, sep)
        events = parse_integers(fields, ("user_id", "item_id", "timestamp"), self.ratings).drop("line")
        genres = self.item_genres()
        events = events.join(genres, on="item_id", how="left", maintain_order="left").with_columns(
            pl.col("category_id").fill_null(NO_GENRE), pl.int_range(pl.len(), dtype=pl.Int64).alias("order"))
        info = {"source": str(self.ratings), "items_without_genre": int(
            events.filter(pl.col("category_id") == NO_GENRE)["item_id"].n_unique())}
        return RawLog(events=events, users=self.profiles() if self.users.is_file() else None, info=info)

    def item_genres(self) -> pl.DataFrame:
        """item_id -> category_id (index of its first genre)."""
        if self.layout == "100k":
            fields = read_fields(self.items, {"item_id": 0, **{f"g{i}": 5 + i for i in range(19)}}, "|",
                                 encoding="utf8-lossy")
            items = parse_integers(fields, ("item_id", *(f"g{i}" for i in range(19))), self.items)
            first = pl.concat_list([pl.when(pl.col(f"g{i}") == 1).then(i) for i in range(19)]).list.drop_nulls()
            return items.select("item_id", first.list.first().cast(pl.Int64).alias("category_id"))
        fields = read_fields(self.items, {"item_id": 0, "genres": 2}, "::", encoding="utf8-lossy")
        items = parse_integers(fields, ("item_id",), self.items)
        names = items.select(pl.col("genres").str.split("|").list.first().alias("genre")).unique().sort("genre")
        ids = names.with_row_index("category_id").with_columns(pl.col("category_id").cast(pl.Int64))
        return items.select("item_id", pl.col("genres").str.split("|").list.first().alias("genre")) \
            .join(ids, on="genre", how="left").select("item_id", "category_id")

    def profiles(self) -> pl.DataFrame:
        if self.layout == "100k":
            cols = {"user_id": 0, "age": 1, "gender": 2, "occupation": 3}
            fields = read_fields(self.users, cols, "|")
        else:
            cols = {"user_id": 0, "gender": 1, "age": 2, "occupation": 3}
            fields = read_fields(self.users, cols, "::")
        frame = parse_integers(fields, ("user_id", "age"), self.users)
        if not frame["gender"].is_in(["M", "F"]).all():
            bad = frame.filter(~pl.col("gender").is_in(["M", "F"])).row(0, named=True)
            raise BadInput(f"{self.users}: line {bad['line']}, column gender: {bad['gender']!r} is not M or F")
        # occupations are codes (ml-1m) or names (ml-100k): a stable integer code either way
        occupation = pl.col("occupation").rank("dense").cast(pl.Int64) - 1
        return frame.select("user_id", "age", (pl.col("gender") == "F").cast(pl.Int64).alias("gender"),
                            occupation.alias("occupation"))
