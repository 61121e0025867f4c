"""Placeholders learnt from the data: a value shared by implausibly many people is no evidence.

``placeholders.json`` lists the placeholders we know (``01/01/1900``, ``INCONNU``, a CCAS
address). An authority's own (a switchboard, a default birth date its software fills in, an
``00000`` postcode every record carries) are found here, on the whole standardised data set,
by comparing how many people carry a value with how many could:

=====================  ===================================================================
field                  nulled when
=====================  ===================================================================
phone_std, email_std   carried by more than ``MAX_SURNAMES_PER_CONTACT`` (3) surnames: a
                       household shares a landline or a family mailbox under one or two
                       surnames; a switchboard or a service's mailbox appears under dozens
address_std            (with its postcode) carried by more distinct surnames than
                       ``OUTLIER_FACTOR`` (10) × the 99th percentile of the other addresses
                       of the data set (the most shared one left out, so that a value every
                       record carries does not set its own bar), and more than
                       ``ADDRESS_MIN_SURNAMES`` (20): a large building is normal where large
                       buildings are, a domiciliation address is not. Its
                       ``house_number_std`` / ``street_key`` / ``street_skeleton`` go too
postcode_std           carried with more distinct towns (``city``) than ``OUTLIER_FACTOR`` ×
                       the 99th percentile of the other postcodes, and more than
                       ``POSTCODE_MIN_CITIES`` (20): a postcode names an area. How many records
                       carry it says nothing: a commune's real postcode shared by the whole
                       file is normal (a single-commune data set), so a postcode is never
                       nulled for its count. Without towns, only the listed shapes (00000,
                       99999) are placeholders (``placeholders.json``)
birth date (full)      carried by more distinct surnames than the birth-date distribution
                       allows: expected count e = the distinct surnames of the other days of
                       the 30 days either side (seasons, or an age cut-off of the data, make a
                       year uneven), per day; nulled when above max(``BIRTH_DATE_MIN``,
                       e + 8·√e + 3) (a Poisson tail far below one in a million per date).
                       Year, month and day go
day-month, per source  a MM-DD carried (any year) by more than max(``DAY_MONTH_MIN``, 3·e +
                       8·√e) distinct surname-and-year pairs of one source, e its share of the
                       other days (dates nulled whole by the rule above left out): a source
                       that writes unknown dates as 1 January (or 1 July). The year is kept;
                       month and day go
=====================  ===================================================================

Counts, never values, are returned (for the run report).
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from matching import resources

log = logging.getLogger(__name__)

MAX_SURNAMES_PER_CONTACT = 3
OUTLIER_QUANTILE = 0.99
OUTLIER_FACTOR = 10
ADDRESS_MIN_SURNAMES = 20
POSTCODE_MIN_CITIES = 20
BIRTH_DATE_MIN = 5
BIRTH_DATE_Z = 8
BIRTH_DATE_WINDOW = 30  # days either side of a date whose births set its expected count
DAY_MONTH_MIN = 10
DAY_MONTH_FACTOR = 3

_ADDRESS_KEYS = ("house_number_std", "street_key", "street_skeleton")
_DATE_PARTS = ("birth_date_std", "birth_year", "birth_month", "birth_day")

_CITY = "nullif(trim(regexp_replace(upper(strip_accents(city)), '[^A-Z]+', ' ', 'g')), '')"


def _flags_sql(has: set[str]) -> str:
    """SQL: one row per input row (``__pos``) with a flag per rule."""
    ctes = [
        """sp AS (SELECT phone_std FROM std_in WHERE phone_std IS NOT NULL
                  GROUP BY 1 HAVING count(DISTINCT surname_std) > $max_surnames)""",
        """se AS (SELECT email_std FROM std_in WHERE email_std IS NOT NULL
                  GROUP BY 1 HAVING count(DISTINCT surname_std) > $max_surnames)""",
        """ak AS (SELECT address_std, coalesce(postcode_std, '') AS pc, count(DISTINCT surname_std) AS k
                  FROM std_in WHERE address_std IS NOT NULL GROUP BY ALL)""",
        """sa AS (SELECT address_std, pc FROM ak
                  WHERE k > (SELECT greatest($address_min, $factor * coalesce(quantile_cont(k, $q), 0)) FROM ak
                             WHERE k < (SELECT max(k) FROM ak)))""",
        """dk AS (SELECT birth_date_std AS d, count(DISTINCT surname_std) AS k FROM std_in
                  WHERE birth_date_std IS NOT NULL GROUP BY 1)""",
        # expected: the other days of a window around the date (seasons, an age cut-off in the data)
        """dr AS (SELECT min(d) AS lo, max(d) AS hi FROM dk)""",
        """sd AS (SELECT d FROM (
                      SELECT d, k, (sum(k) OVER w - k) / greatest(1, least(d + $window, hi) - greatest(d - $window, lo))
                          AS e
                      FROM dk, dr WINDOW w AS (ORDER BY d RANGE BETWEEN $window PRECEDING AND $window FOLLOWING))
                  WHERE k > greatest($date_min, e + $z * sqrt(e) + 3))""",
        """mk AS (SELECT coalesce(source_system, '') AS src, strftime(birth_date_std, '%m-%d') AS md,
                         count(DISTINCT coalesce(surname_std, '') || ':' || year(birth_date_std)) AS k
                  FROM std_in WHERE birth_date_std IS NOT NULL AND birth_date_std NOT IN (SELECT d FROM sd)
                  GROUP BY ALL)""",
        """sm AS (SELECT src, md FROM (
                      SELECT src, md, k, (sum(k) OVER (PARTITION BY src) - k) / 364.25
                             * CASE md WHEN '02-29' THEN 0.25 ELSE 1 END AS e FROM mk)
                  WHERE k > greatest($day_month_min, $day_month_factor * e + $z * sqrt(e)))""",
    ]
    if "city" in has:
        ctes += [
            f"""pk AS (SELECT postcode_std, count(DISTINCT {_CITY}) AS k FROM std_in
                      WHERE postcode_std IS NOT NULL GROUP BY 1)""",
            """spc AS (SELECT postcode_std FROM pk WHERE k >
                      (SELECT greatest($postcode_min, $factor * coalesce(quantile_cont(k, $q), 0)) FROM pk
                       WHERE k < (SELECT max(k) FROM pk)))""",
        ]
        postcode_flag = "postcode_std IN (SELECT postcode_std FROM spc)"
    else:
        postcode_flag = "false"
    return f"""
WITH {", ".join(ctes)}
SELECT __pos,
    coalesce(phone_std IN (SELECT phone_std FROM sp), false) AS f_phone,
    coalesce(email_std IN (SELECT email_std FROM se), false) AS f_email,
    coalesce((address_std, coalesce(postcode_std, '')) IN (SELECT (address_std, pc) FROM sa), false) AS f_address,
    coalesce({postcode_flag}, false) AS f_postcode,
    coalesce(birth_date_std IN (SELECT d FROM sd), false) AS f_date,
    coalesce((coalesce(source_system, ''), strftime(birth_date_std, '%m-%d')) IN (SELECT (src, md) FROM sm), false)
        AS f_day_month
FROM std_in
ORDER BY __pos
"""


def null_implausible_values(
    standardised: pa.Table,
    *,
    max_surnames_per_contact: int = MAX_SURNAMES_PER_CONTACT,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[pa.Table, dict[str, int]]:
    """Null the values of ``standardised`` (a :func:`matching.standardise.standardise` output)
    that the data shows are shared by implausibly many people (see the module docstring).

    Returns the table (same columns, order and schema metadata) and, per rule, how many records
    had a value nulled: ``phone_std``, ``email_std``, ``address_std``, ``postcode_std``,
    ``birth_date_std`` (the whole date), ``birth_day_month`` (a presumed day and month).
    """
    has = set(standardised.column_names)
    table = standardised.append_column("__pos", pa.array(range(standardised.num_rows), pa.int64()))
    db = resources.connect() if con is None else con
    try:
        db.register("std_in", table)
        params = {
            "max_surnames": max_surnames_per_contact, "q": OUTLIER_QUANTILE, "factor": OUTLIER_FACTOR,
            "address_min": ADDRESS_MIN_SURNAMES, "postcode_min": POSTCODE_MIN_CITIES, "date_min": BIRTH_DATE_MIN,
            "z": BIRTH_DATE_Z, "day_month_min": DAY_MONTH_MIN, "day_month_factor": DAY_MONTH_FACTOR,
            "window": BIRTH_DATE_WINDOW,
        }
        if "city" not in has:
            del params["postcode_min"]
        flags = db.sql(_flags_sql(has), params=params).to_arrow_table()
        db.unregister("std_in")
    finally:
        if con is None:
            db.close()
    out = standardised
    counts: dict[str, int] = {}

    def null_where(flag: str, columns: tuple[str, ...], name: str) -> None:
        nonlocal out
        mask = flags[flag]
        n = pc.sum(mask).as_py() or 0
        counts[name] = n
        if not n:
            return
        for col in columns:
            if col in out.column_names:
                i = out.column_names.index(col)
                arr = out[col]
                out = out.set_column(i, out.schema.field(i), pc.if_else(mask, pa.nulls(len(arr), arr.type), arr))

    null_where("f_phone", ("phone_std",), "phone_std")
    null_where("f_email", ("email_std",), "email_std")
    null_where("f_address", ("address_std", *_ADDRESS_KEYS), "address_std")
    null_where("f_postcode", ("postcode_std",), "postcode_std")
    null_where("f_date", _DATE_PARTS, "birth_date_std")
    null_where("f_day_month", ("birth_date_std", "birth_month", "birth_day"), "birth_day_month")
    if any(counts.values()):
        log.info("values shared by implausibly many people, nulled (records per rule): %s",
                 ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return out.replace_schema_metadata(standardised.schema.metadata), counts
