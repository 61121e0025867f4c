"""Benchmark: the mapping-file connector (CSV) against a bare dlt Arrow load of the same data.

    .venv/bin/python bench/ingest_files.py --rows 1000000 [--warehouse-url postgresql://…]

Writes a cp1252 ``;`` CSV with French dates and decimal commas (one usager per line, a few
bad rows), then in the same run: (1) the bare baseline — pyarrow.csv reads the file with no
checks and dlt loads the Arrow table — and (2) ``connectors.files.load`` with a mapping (decoding,
typing, checks, national-id guard, quarantine, merge on the key). Prints rows/s of both.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import connectors  # noqa: F401  (dlt's environment: no telemetry, no Airflow Variables lookup)

MAPPING = """
system = "bench"

[entities.usagers]
files = "usagers*.csv"
encoding = "cp1252"
delimiter = ";"
date_formats = ["dd/mm/yyyy"]
decimal_mark = ","
thousands_separator = " "
key = ["id"]

[entities.usagers.columns]
id = "text"
civilite = "text"
nom = "text"
prenom = "text"
date_naissance = "date"
email = "text"
telephone = "text"
adresse = "text"
code_postal = { type = "text", pattern = "\\\\d{5}" }
commune = "text"
solde = "decimal"
siret = { type = "text", check = "siret" }
date_maj = "date"

[[entities.usagers.feeds]]
table = "person_record"
role = { const = "usager" }
usage_name = { column = "nom", transforms = ["upper"] }
given_names = "prenom"
birth_date = "date_naissance"
email = "email"
phone = "telephone"
address_line = "adresse"
postcode = "code_postal"
city = "commune"
"""

HEADER = "id;civilite;nom;prenom;date_naissance;email;telephone;adresse;code_postal;commune;solde;siret;date_maj"
NAMES = ["MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU", "LEFÈVRE"]
FIRST = ["Jérôme", "Anaïs", "Zoé", "Léo", "Inès", "Hélène", "François", "Noël", "Maëlle", "Clément"]


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="cp1252", newline="") as f:
        f.write(HEADER + "\r\n")
        for i in range(1, rows + 1):
            date = f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{rnd.randint(1940, 2010)}"
            if i % 10_000 == 0:
                date = "31/02/2020"  # a few bad rows, as real exports have
            amount = f"{i % 50_000:,}".replace(",", " ") + f",{i % 100:02d}"  # 12 345,67
            f.write(f"U{i:08d};{'Mme' if i % 2 else 'M.'};{NAMES[i % 10]};{FIRST[(i * 7) % 10]};{date};"
                    f"u{i}@example.org;06 12 34 {i % 100:02d} {i % 97:02d};{i % 300} rue des Lilas;"
                    f"{75000 + i % 20:05d};Paris;{amount};{'73282932000074' if i % 3 else ''};05/01/2026\r\n")


def bare_load(url: str, path: Path, pipelines_dir: Path) -> float:
    import dlt
    import pyarrow.csv as pacsv

    from connectors.base import loader_file_format
    from warehouse.engine import Warehouse

    started = time.perf_counter()
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(encoding="cp1252"),
                           parse_options=pacsv.ParseOptions(delimiter=";"))
    with Warehouse(url) as wh:
        dest = wh.dlt_destination()
        p = dlt.pipeline(pipeline_name="bench_bare", destination=dest, dataset_name="raw_bare",
                         pipelines_dir=str(pipelines_dir))
        p.run(dlt.resource(table, name="usagers"), loader_file_format=loader_file_format(dest))
    return time.perf_counter() - started


def mapped_load(url: str, drop: Path, mapping: Path, pipelines_dir: Path) -> tuple[float, object]:
    from connectors import files
    from connectors.runner import run_source
    from warehouse.engine import Warehouse

    started = time.perf_counter()
    with Warehouse(url) as wh:
        result = run_source(files, wh.dlt_destination(), "bench", pipelines_dir=pipelines_dir, mapping=mapping,
                            drop_dir=drop)
    return time.perf_counter() - started, result


def warm_up(root: Path, mapping: Path) -> None:
    """Both paths once on a tiny file first, so that neither timing pays the first-run imports or
    Arrow's compute-kernel registration (seconds here, no .pyc being written)."""
    drop = root / "warm_drop"
    drop.mkdir()
    write_csv(drop / "usagers_warm.csv", 100)
    bare_load(f"duckdb:///{root / 'warm_bare.duckdb'}", drop / "usagers_warm.csv", root / "p_warm_bare")
    mapped_load(f"duckdb:///{root / 'warm_hub.duckdb'}", drop, mapping, root / "p_warm_hub")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--warehouse-url", default=None, help="default: a fresh DuckDB file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        drop = root / "drop"
        drop.mkdir()
        csv_path = drop / "usagers_2026.csv"
        t0 = time.perf_counter()
        write_csv(csv_path, args.rows)
        mapping = root / "bench.toml"
        mapping.write_text(MAPPING, encoding="utf-8")
        url = args.warehouse_url or f"duckdb:///{root / 'bench.duckdb'}"
        print(f"{args.rows:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB written in {time.perf_counter() - t0:.1f} s")
        warm_up(root, mapping)
        bare = bare_load(url, csv_path, root / "p_bare")
        print(f"bare dlt arrow load (pyarrow.csv, no checks): {bare:.2f} s, {args.rows / bare:,.0f} rows/s")
        took, result = mapped_load(url, drop, mapping, root / "p_files")
        c = result.count("usagers")
        print(f"mapping connector: {took:.2f} s, {c.rows_read / took:,.0f} rows/s "
              f"({c.rows_loaded:,} loaded, {c.rows_quarantined:,} quarantined; {bare / took:.0%} of bare)")
        took2, result2 = mapped_load(url, drop, mapping, root / "p_files")
        print(f"unchanged re-run: {took2:.2f} s, {result2.count('usagers').rows_read} rows read")


if __name__ == "__main__":
    main()
