"""The Brussels sandbox (``country="BE"``): bilingual addresses, Belgian names, postcodes, phones and
national numbers, the same ground-truth mechanics as the French one, and the French one unchanged."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from connectors.base import contains_national_id, national_id_rows
from sandbox import build_sandbox, generate_population, load_truth, observe, open_sandbox, to_person_records
from sandbox import names_be as NB
from sandbox.defects import FICTIONAL_NATIONAL_NUMBERS, belgian_national_number, inject_defects
from sandbox.observations import Observations, format_phone_be, particle_variant
from sandbox.population import Population, ascii_fold

PEOPLE = 3_000
SEED = 7
BRUSSELS_POSTCODES = {"1000", "1020", "1030", "1040", "1050", "1060", "1070", "1080", "1081", "1082", "1083",
                      "1090", "1120", "1130", "1140", "1150", "1160", "1170", "1180", "1190", "1200", "1210"}
E164_BE = re.compile(r"^\+32(4[6-9]\d{7}|2\d{7})$")
SILO_TABLES = ("finance_tiers", "family_familles", "family_responsables", "family_enfants", "associations",
               "dirigeants", "salesforce_contacts", "servicenow_users")


@pytest.fixture(scope="module")
def be_population() -> Population:
    return generate_population(PEOPLE, SEED, country="BE")


@pytest.fixture(scope="module")
def be_observations(be_population: Population) -> Observations:
    return observe(be_population, SEED)


@pytest.fixture(scope="module")
def be_records(be_observations: Observations) -> pa.Table:
    return to_person_records(be_observations)


@pytest.fixture(scope="module")
def be_sandbox(tmp_path_factory: pytest.TempPathFactory):
    sb = build_sandbox(tmp_path_factory.mktemp("brussels"), people=1_200, seed=3, country="BE")
    inject_defects(sb.root, country="BE")
    return sb


# ---------------------------------------------------------------------------- the French default


def _digest(tables: list[tuple[str, pa.Table | None]]) -> str:
    h = hashlib.sha256()
    for name, t in tables:
        h.update(name.encode())
        if t is None:
            continue
        h.update(str(t.schema).encode())
        for c in t.column_names:
            h.update(c.encode())
            h.update(repr(t.column(c).to_pylist()).encode())
    return h.hexdigest()


@pytest.mark.parametrize(("people", "seed", "pool", "expected"), [
    (3000, 7, "france", "add61778f8a814a8600d354fce16c5e8ece29aa7e8cb7b9b00539003278a4fe2"),
    (800, 3, "dense", "9a1826f354b603698c2a4c599d978896c3f51b826f0bcb4d95aa70c1941d3207"),
], ids=["france-3000", "dense-800"])
def test_the_french_sandbox_is_byte_identical_to_before_the_belgian_mode(people, seed, pool, expected):
    # Digests taken on the code before the Belgian mode existed (commit 460852d): the population and
    # every silo's table, values and types. If this fails, the French benchmarks moved.
    pop = generate_population(people, seed, surnames=pool)
    assert pop.country == "FR"
    obs = observe(pop, seed)
    tables = [("persons", pop.persons), ("households", pop.households)]
    tables += [(name, getattr(obs, name)) for name in SILO_TABLES]
    assert _digest(tables) == expected
    assert set(to_person_records(obs).column("country").to_pylist()) == {"FR"}


def test_a_french_sandbox_manifest_has_no_country_and_opens_as_french(tmp_path: Path):
    sb = build_sandbox(tmp_path / "fr", people=200, seed=1)
    assert "country" not in json.loads((sb.root / "sandbox.json").read_text(encoding="utf-8"))
    assert open_sandbox(sb.root).country == "FR"


def test_unknown_country_and_dense_pool_for_brussels_are_refused():
    with pytest.raises(ValueError, match="country"):
        generate_population(10, 1, country="NL")
    with pytest.raises(ValueError, match="French only"):
        generate_population(10, 1, surnames="dense", country="BE")


# ---------------------------------------------------------------------------- population


def test_same_seed_same_brussels_and_it_differs_from_france():
    a, b = generate_population(400, 5, country="BE"), generate_population(400, 5, country="be")
    assert a.persons.equals(b.persons) and a.households.equals(b.households)
    assert a.country == "BE"
    fr = generate_population(400, 5)
    assert a.persons.column("postcode").to_pylist() != fr.persons.column("postcode").to_pylist()


def test_households_twins_and_truth_work_as_in_france(be_population: Population):
    p = be_population.persons
    assert p.num_rows == PEOPLE
    assert pc.count_distinct(p.column("person_id")).as_py() == PEOPLE
    heads = p.filter(pc.equal(p.column("household_role"), "responsable"))
    assert set(heads.column("household_id").to_pylist()) == set(p.column("household_id").to_pylist())
    twins = p.filter(p.column("is_twin")).to_pylist()
    assert twins
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in twins:
        groups[(r["household_id"], r["birth_date"])].append(r)
    for g in groups.values():
        assert len(g) >= 2
        firsts = [r["given_names"].split(" ")[0] for r in g]
        assert len(set(firsts)) == len(firsts)
        assert len({r["birth_name"] for r in g}) == 1
    # members of a household share its address, in both languages
    by_h: dict[int, set] = defaultdict(set)
    for r in p.select(["household_id", "address_line", "address_line_nl", "postcode"]).to_pylist():
        by_h[r["household_id"]].add((r["address_line"], r["address_line_nl"], r["postcode"]))
    assert all(len(v) == 1 for v in by_h.values())


def test_communities_names_and_namesakes_look_like_brussels():
    rows = generate_population(20_000, 42, country="BE").persons.to_pylist()
    communities = Counter(r["community"] for r in rows)
    assert set(communities) == {c[0] for c in NB.COMMUNITIES}
    assert communities["fr"] > communities["nl"] > communities["pt"]
    surnames = Counter(r["birth_name"] for r in rows)
    for name in ("Peeters", "Janssens", "Dubois", "Lambert", "El Amrani", "Yilmaz", "Rossi", "Nowak", "Popescu"):
        assert surnames[name] > 0, name
    # no surname dominates (Dubois, the most common here, well under 1 %), thousands of them in all
    assert surnames.most_common(1)[0][1] < 0.01 * len(rows)
    assert len(surnames) > 5_000
    # a share of namesakes (first prénom + surname) of the order of the French sandbox's
    names = Counter((r["given_names"].split(" ")[0], r["usage_name"]) for r in rows)
    shared = sum(n for n in names.values() if n >= 2) / len(rows)
    assert 0.03 < shared < 0.25
    # Polish surnames agree with the bearer
    polish_women = [r["birth_name"] for r in rows if r["community"] == "pl" and r["sex"] == "F"]
    assert not any(n.endswith("ski") for n in polish_women)
    assert any(n.endswith("ska") for n in polish_women)


def test_married_women_keep_their_birth_name_far_more_than_in_france():
    def changed_share(country: str) -> float:
        pop = generate_population(10_000, 11, country=country)
        married = pop.households.filter(pop.households.column("married")).column("household_id").to_pylist()
        wives = [r for r in pop.persons.to_pylist() if r["household_id"] in set(married) and r["sex"] == "F"
                 and r["household_role"] != "enfant"]
        return sum(r["usage_name"] != r["birth_name"] for r in wives) / len(wives)

    be, fr = changed_share("BE"), changed_share("FR")
    assert be < 0.25 < 0.6 < fr


def test_postcodes_communes_and_streets_are_brussels(be_population: Population):
    p = be_population.persons
    assert set(p.column("postcode").to_pylist()) <= BRUSSELS_POSTCODES
    assert len(set(p.column("postcode").to_pylist())) >= 18
    assert all(len(c) == 4 and c.isdigit() for c in p.column("postcode").to_pylist())
    assert set(p.column("city_code").to_pylist()) <= {c[0] for c in NB.COMMUNES}
    nl_of = {c[2]: c[3] for c in NB.COMMUNES}
    for r in p.select(["city", "city_nl", "address_line", "address_line_nl"]).to_pylist():
        assert r["city_nl"] == nl_of[r["city"]]
        # same number (and box) in both languages: only the street's name differs
        assert r["address_line"].split(" ")[-1] == r["address_line_nl"].split(" ")[-1]
    assert len(NB.STREET_PAIRS) >= 40
    lines = set(p.column("address_line").to_pylist()) | set(p.column("previous_address_line").drop_null().to_pylist())
    real = [fr for fr, _, _ in NB.STREET_PAIRS if any(line.startswith(fr + " ") for line in lines)]
    assert len(real) >= 30, "most real street pairs are lived in"


def test_phones_are_belgian_e164(be_population: Population):
    phones = be_population.persons.column("phone").drop_null().to_pylist()
    assert phones and all(E164_BE.match(x) for x in phones)
    assert any(x.startswith("+324") for x in phones)
    landlines = be_population.households.column("landline").drop_null().to_pylist()
    assert landlines and all(re.match(r"^\+322\d{7}$", x) for x in landlines)


@pytest.mark.parametrize(("e164", "style", "written"), [
    ("+32475123456", 0, "0475 12 34 56"), ("+32475123456", 1, "0475123456"), ("+32475123456", 2, "+32475123456"),
    ("+32475123456", 3, "+32 475 12 34 56"), ("+32475123456", 4, "0475/12.34.56"),
    ("+32475123456", 5, "0032 475 12 34 56"), ("+3225123456", 0, "02 512 34 56"),
    ("+3225123456", 3, "+32 2 512 34 56"), ("+3225123456", 4, "02/512.34.56"),
], ids=lambda v: str(v))
def test_belgian_phone_formats(e164, style, written):
    assert format_phone_be(e164, style) == written


# ---------------------------------------------------------------------------- silos


def _silo_rows(obs: Observations) -> list[dict]:
    """(person_id, silo, name, street line) of every person record with its address as the silo wrote it."""
    fam = {r["id"]: r for r in obs.family_familles.to_pylist()}
    sources = (
        ("family", obs.family_responsables, "nom", lambda r: fam[r["famille_id"]]["ligne"]),
        ("associations", obs.dirigeants, "nom", lambda r: r["adresse"]),
        ("salesforce", obs.salesforce_contacts, "LastName", lambda r: r["MailingStreet"]),
        ("servicenow", obs.servicenow_users, "last_name", lambda r: r["street"]),
        ("finance", obs.finance_tiers, "nom", lambda r: r["adresse"]),
    )
    rows = []
    for silo, table, name, line in sources:
        for r in table.to_pylist():
            rows.append({"person_id": r["person_id"], "silo": silo, "name": r[name], "line": line(r)})
    return rows


def test_silos_write_a_persons_street_in_french_in_one_and_dutch_in_another(be_population, be_observations):
    persons = {r["person_id"]: r for r in be_population.persons.to_pylist()}

    def street(line: str) -> str:  # the street part of a line: without number and box
        return re.split(r" \d", line, maxsplit=1)[0]

    lang: dict[int, set[str]] = defaultdict(set)
    for r in _silo_rows(be_observations):
        if r["line"] is None or r["silo"] == "finance":  # finance abbreviates; checked below
            continue
        p = persons[r["person_id"]]
        for fr, nl in ((p["address_line"], p["address_line_nl"]),
                       (p["previous_address_line"], p["previous_address_line_nl"])):
            if fr is None:
                continue
            if street(r["line"]) == street(fr):
                lang[r["person_id"]].add("fr")
            elif street(r["line"]) == street(nl):
                lang[r["person_id"]].add("nl")
    both = [pid for pid, langs in lang.items() if langs == {"fr", "nl"}]
    assert len(both) >= 10, "some people are written in French by one silo and in Dutch by another"
    written = Counter(next(iter(v)) for v in lang.values() if len(v) == 1)
    assert written["fr"] > written["nl"] > 0  # Brussels: mostly French, Dutch for a good part
    # Dutch speakers are written in Dutch more often than French speakers
    nl_share = {}
    for speaks in ("fr", "nl"):
        ids = [pid for pid in lang if persons[pid]["language"] == speaks]
        nl_share[speaks] = sum("nl" in lang[pid] for pid in ids) / len(ids)
    assert nl_share["nl"] > 3 * nl_share["fr"]
    finance = [r["line"] for r in _silo_rows(be_observations) if r["silo"] == "finance"]
    assert any(re.search(r"STR\.? |STRAAT |STEENWE?G |LAAN ", x) for x in finance)
    assert any(x.startswith(("RUE ", "R. ", "AV", "CH")) for x in finance)
    assert all(x == ascii_fold(x).upper() for x in finance)


def test_silos_write_particles_attached_detached_and_recased(be_population, be_observations):
    truth = {r["person_id"]: (r["birth_name"], r["usage_name"]) for r in be_population.persons.to_pylist()}
    particled = re.compile(r"^(Van den|Van der|Van de|Vanden|Vander|Van|De|Le|Du|El)\s")
    forms: dict[str, set[str]] = defaultdict(set)
    for r in _silo_rows(be_observations):
        usage = truth[r["person_id"]][1]
        if r["name"] is not None and particled.match(usage) and r["silo"] != "finance":
            forms[usage].add(r["name"])
    written = [w for ws in forms.values() for w in ws]
    assert any(" " not in w and w.lower().startswith(("van", "de", "le", "du", "el")) for w in written), "attached"
    assert any(w.startswith(("van ", "de ", "le ", "du ", "el ")) for w in written), "lower-case particle"
    assert any(re.match(r"^Van (Den|Der|De) ", w) for w in written), "capitalised particle"
    assert any(len(ws) >= 3 for ws in forms.values()), "one name, several forms"
    assert not any(re.match(r"^(Van|De|Le|Du|El)-", w, re.I) for w in written), "particles are never hyphenated"


@pytest.mark.parametrize(("name", "kind", "written"), [
    ("Van den Bossche", 0, "Vandenbossche"), ("Van den Bossche", 1, "Vanden Bossche"),
    ("Vanden Bossche", 1, "Van den Bossche"), ("Van den Bossche", 2, "van den Bossche"),
    ("Van den Bossche", 3, "Van Den Bossche"), ("De Smet", 0, "Desmet"), ("De la Fuente", 3, "De La Fuente"),
    ("El Amrani", 2, "el Amrani"), ("Peeters", 0, "Peeters"), ("Van Damme Peeters", 0, "Vandamme Peeters"),
], ids=lambda v: str(v))
def test_particle_variants(name, kind, written):
    assert particle_variant(name, kind) == written


def test_canonical_records_are_belgian_and_match_the_truth(be_population, be_observations, be_records):
    assert set(be_records.column("country").to_pylist()) == {"BE"}
    pcs = be_records.column("postcode").drop_null().to_pylist()
    assert pcs and set(pcs) <= BRUSSELS_POSTCODES
    ids = set(be_population.persons.column("person_id").to_pylist())
    assert set(be_records.column("person_id").to_pylist()) <= ids
    assert pc.count_distinct(be_records.column("record_key")).as_py() == be_records.num_rows
    # every silo phone is one of the population's +32 numbers, however it is written
    e164 = set(be_population.persons.column("phone").drop_null().to_pylist())
    e164 |= set(be_population.households.column("landline").drop_null().to_pylist())
    for written in be_records.column("phone").drop_null().to_pylist():
        digits = re.sub(r"\D", "", written)
        number = "+" + digits[2:] if digits.startswith("00") else "+" + digits if written.startswith("+") \
            else "+32" + digits[1:]
        assert number in e164, written


def test_no_clean_silo_value_looks_like_a_national_number(be_observations: Observations):
    # phones as Belgians write them (0032 475 ..., 0475/12.34.56), dates, addresses: none is taken
    # for a national number. Generated ids (ServiceNow's random sys_id) are left out: not personal data.
    for name in SILO_TABLES:
        t = getattr(be_observations, name)
        cols = [c for c in t.column_names if pa.types.is_string(t.schema.field(c).type) and c not in ("sys_id", "Id")]
        assert national_id_rows(t.select(cols)) == {}, name


# ---------------------------------------------------------------------------- national numbers


def _key_ok(number: str, born_2000s: bool) -> bool:
    digits = re.sub(r"\D", "", number)
    base = int(("2" if born_2000s else "") + digits[:9])
    return int(digits[9:]) == 97 - base % 97


def test_belgian_national_numbers_have_a_valid_key():
    assert belgian_national_number(date(1985, 7, 30), 33) == "85.07.30-033.28"  # 850730033 mod 97 = 69
    first, second = FICTIONAL_NATIONAL_NUMBERS
    assert re.match(r"^\d\d\.\d\d\.\d\d-\d{3}\.\d\d$", first) and _key_ok(first, born_2000s=False)
    assert re.match(r"^\d{11}$", second) and _key_ok(second, born_2000s=True)
    assert not _key_ok(second, born_2000s=False)
    for n in FICTIONAL_NATIONAL_NUMBERS:
        assert contains_national_id(n)
    with pytest.raises(ValueError):
        belgian_national_number(date(1990, 1, 1), 999)


def test_seeded_national_numbers_are_caught_by_the_guard(be_sandbox):
    path = be_sandbox.associations_dir / "dirigeants.csv"
    with open(path, encoding="cp1252", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    table = pa.table({c: [r[i] for r in body] for i, c in enumerate(header)})
    hits = national_id_rows(table)
    caught = {body[i][0]: column for i, column in hits.items()}
    seeded = {r[0]: r for r in body if any(n in "".join(r) for n in FICTIONAL_NATIONAL_NUMBERS)}
    assert len(seeded) == 2
    assert caught == {seeded_id: col for seeded_id, col in caught.items() if seeded_id in seeded}
    assert set(caught) == set(seeded)
    assert sorted(caught.values()) == ["adresse", "telephone"]


def test_brussels_sandbox_builds_with_truth_and_manifest(be_sandbox):
    sb = open_sandbox(be_sandbox.root)
    assert sb.country == "BE"
    truth = load_truth(be_sandbox.root)
    assert pc.count_distinct(truth.column("record_key")).as_py() == truth.num_rows
    families = json.loads((be_sandbox.family_dir / "familles.json").read_text(encoding="utf-8"))
    assert families and all(f["adresse"]["code_postal"] in BRUSSELS_POSTCODES for f in families)
    enfants = json.loads((be_sandbox.family_dir / "enfants.json").read_text(encoding="utf-8"))
    assert {e["classe"][0] for e in enfants} <= {"M", "P", "S"}


# ---------------------------------------------------------------------------- hub demo --country


def test_demo_settings_name_the_brussels_deployment(be_sandbox, tmp_path: Path):
    from hub.demo import sandbox_settings

    settings = sandbox_settings(tmp_path, be_sandbox, "http://127.0.0.1:9/family")
    assert settings.extra.get("country") == "BE"
    assert 'country = "BE"' in (tmp_path / "hub.toml").read_text(encoding="utf-8")
    french = build_sandbox(tmp_path / "fr", people=150, seed=2)
    (tmp_path / "fr-var").mkdir()
    assert "country" not in sandbox_settings(tmp_path / "fr-var", french, "http://127.0.0.1:9/family").extra


def test_hub_demo_has_a_country_option():
    from click.testing import CliRunner

    from hub.cli import main

    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--country [fr|be]" in result.output
    bad = CliRunner().invoke(main, ["demo", "--country", "nl"])
    assert bad.exit_code != 0
