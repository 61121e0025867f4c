"""Placeholders learnt from the data: values shared by implausibly many people are nulled;
values a whole data set legitimately shares (one commune's postcode) are not."""

from __future__ import annotations

import random
from datetime import date, timedelta

from matching.placeholders import null_implausible_values
from matching.resolve import prepare
from matching.standardise import standardise, standardise_report
from tests.matching.conftest import make_records

SURNAMES = [f"{a}{b}" for a in ("Ber", "Cal", "Dur", "Fab", "Gar", "Hen", "Lam", "Mor", "Pel", "Roc")
            for b in ("and", "ez", "ier", "on", "ot", "ault", "in", "y", "eau", "ard")]


def _people(n: int, seed: int = 7, **overrides) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({
            "source_system": "file", "source_id": str(i),
            "given_names": rnd.choice(["Ann", "Bob", "Carl", "Dina", "Eve", "Finn", "Gus", "Hana"]),
            "usage_name": SURNAMES[i % len(SURNAMES)],
            "birth_date": date(1950, 1, 1) + timedelta(days=rnd.randrange(60 * 365)),
            "address_line": f"{rnd.randrange(1, 200)} {rnd.choice(['Oak', 'Elm', 'Pine', 'Ash'])} Street",
            "postcode": "3004",
            "city": "Melbourne",
            **overrides,
        })
    return rows


def _learn(rows: list[dict]):
    std = standardise(make_records(*rows))
    return std, *null_implausible_values(std)


def test_a_postcode_every_record_carries_is_kept_when_it_is_the_communes():
    _, out, counts = _learn(_people(300))
    assert out["postcode_std"].to_pylist() == ["3004"] * 300
    assert counts["postcode_std"] == 0


def test_a_placeholder_postcode_every_record_carries_is_nulled():
    # the sentinel shape (placeholders.json, any locale) ...
    std = standardise(make_records(*_people(50, postcode="00000")))
    assert std["postcode_std"].null_count == 50
    # ... and one carried by people of 40 towns: a postcode names one area
    rows = _people(200, postcode="12345")
    for i, r in enumerate(rows):
        r["city"] = f"{SURNAMES[i % 40]}ville"
    _, out, counts = _learn(rows)
    assert out["postcode_std"].null_count == 200
    assert counts["postcode_std"] == 200


def test_a_birth_date_shared_by_everyone_is_nulled():
    _, out, counts = _learn(_people(120, birth_date=date(1970, 1, 1) + timedelta(days=180)))
    assert out["birth_date_std"].null_count == out["birth_year"].null_count == 120
    assert counts["birth_date_std"] == 120


def test_a_default_birth_date_among_real_ones_is_nulled_and_the_real_ones_kept():
    rows = _people(400)
    for r in rows[:40]:
        r["birth_date"] = date(1980, 6, 15)
    std, out, counts = _learn(rows)
    assert counts["birth_date_std"] == 40
    assert out["birth_date_std"].null_count == 40
    assert out["birth_date_std"].to_pylist()[40:] == std["birth_date_std"].to_pylist()[40:]


def test_twins_and_a_few_same_day_births_are_kept():
    rows = _people(400)
    for r in rows[:3]:  # three people born the same day: not implausible
        r["birth_date"] = date(1980, 6, 15)
    rows[3]["birth_date"] = rows[4]["birth_date"] = date(1990, 3, 3)
    _, _, counts = _learn(rows)
    assert counts["birth_date_std"] == 0


def test_a_presumed_day_month_of_one_source_loses_day_and_month_not_year():
    rows = _people(400)
    for r in rows[:60]:  # a source writing an unknown day as 1 July, across years
        r["birth_date"] = date(r["birth_date"].year, 7, 1)
    _, out, counts = _learn(rows)
    # every record of that source born on 1 July loses day and month (60 written so, and any real one)
    assert counts["birth_day_month"] == sum(1 for r in rows if (r["birth_date"].month, r["birth_date"].day) == (7, 1))
    assert counts["birth_date_std"] == 0
    assert out["birth_month"].to_pylist()[:60] == [None] * 60
    assert None not in out["birth_year"].to_pylist()[:60]


def test_an_address_of_dozens_of_surnames_is_nulled_a_household_is_not():
    rows = _people(400)
    for r in rows[:60]:
        r["address_line"] = "1 Town Hall Square"
    rows[100]["address_line"] = rows[101]["address_line"] = "7 Quiet Lane"
    _, out, counts = _learn(rows)
    assert counts["address_std"] == 60
    assert out["address_std"].to_pylist()[:60] == [None] * 60
    assert out["street_key"].to_pylist()[:60] == [None] * 60
    assert out["address_std"].to_pylist()[100] == "7 QUIET LANE"


def test_a_shared_switchboard_is_nulled_a_family_phone_is_not():
    rows = _people(100)
    for r in rows[:10]:
        r["phone"] = "+61 3 9000 1111"
    rows[50]["phone"] = rows[51]["phone"] = "+61 3 9555 2222"
    _, out, counts = _learn(rows)
    assert counts["phone_std"] == 10
    assert out["phone_std"].to_pylist()[50] == "+61395552222"


def test_prepare_reports_locales_and_counts():
    rows = _people(120, birth_date=date(1970, 6, 29))
    std = prepare(make_records(*rows))
    report = standardise_report(std)
    assert report["locales"]["file"]["locale"] == "NEUTRAL"
    assert report["placeholders_nulled"]["birth_date_std"] == 120


def test_an_uneven_year_is_not_a_placeholder():
    # most of a file born in the two months before an age cut-off (18 on 1 Oct 2026): dense days,
    # against the year's mean, but no placeholder against their neighbours
    rnd = random.Random(3)
    rows = _people(1500)
    for i, r in enumerate(rows):
        r["usage_name"] = "N" + "".join(chr(65 + (i // 26 ** p) % 26) for p in range(3))  # distinct surnames
        r["birth_date"] = date(2008, 9, 30) - timedelta(days=rnd.randrange(61)) if i < 1300 else r["birth_date"]
    _, _, counts = _learn(rows)
    assert counts["birth_date_std"] == 0
