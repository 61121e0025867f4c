"""The BI marts (schema ``marts``) as data: every table and column, its meaning, source and privacy.

BI tools read these tables, never ``golden.*``. A mart carries no direct identifier: a citizen
appears under a keyed-hash pseudonym (HMAC-SHA256, the key kept outside the warehouse, one key
per mart so two marts cannot be joined on it, nor a mart back to the golden layer), with coarse
attributes (age band, commune, household type). The aggregates (``agg_*``) count people, never
publish a group under :data:`MIN_CELL` people and suppress a second cell wherever a published
total would reveal a suppressed one (``warehouse/marts.py``).

The data dictionary (``hub warehouse dictionary``) and the register's mapping are generated from and
checked against these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from schemas.contract import Column, Table

MIN_CELL = 11  # no published group under 11 people (CNIL's usual threshold for statistics)
ALL = "*"  # the value of a dimension on a total row of an aggregate (all its values together)
UNKNOWN = "non renseigné"  # a dimension the silo left empty
OTHER_COMMUNE = "autre"  # a commune with fewer than MIN_CELL citizens in the dimension

# privacy of a mart column, as the dictionary and the register state it
PSEUDONYMISED = "pseudonymised"  # keyed hash of an identifier: personal data, not identifying without the key
QUASI = "quasi-identifier"  # coarse attribute of a person (age band, commune): kept coarse on purpose
EVENT = "pseudonymised row"  # an event of a pseudonymised person (service, month, status): personal data
AGGREGATE = "aggregate"  # a count or statistic over at least MIN_CELL people, or suppressed: anonymous
NONE = "none"  # about the build, not about people


@dataclass(frozen=True)
class MartColumn(Column):
    source: str = ""  # where the value comes from (golden / core columns, and how)
    privacy: str = NONE  # PSEUDONYMISED, QUASI, EVENT, AGGREGATE or NONE
    category: str = ""  # the register's data category of a personal column (schemas/register.py)


@dataclass(frozen=True)
class Mart:
    """One mart: the tables keyed by one pseudonym (its own HMAC key), or aggregates (no key)."""

    name: str  # also the key's name: HUB_MART_KEY_<NAME>, <keys_dir>/mart_<name>.key
    tables: tuple[Table, ...]
    keyed: bool = True


M = MartColumn

_PK_MEANING = ("the citizen's pseudonym in this mart: HMAC-SHA256 (first 128 bits, hex) of the hub's citizen id "
               "under this mart's own key; stable while the key is, different in every mart")


def _row_level(name: str, meaning: str, columns: tuple[MartColumn, ...], key: tuple[str, ...] = ()) -> Table:
    """A table of one row per person or per event of a person: pseudonymised personal data (GDPR Art. 4(5)),
    so every column is personal; its privacy says how it is protected."""
    cols = []
    for c in columns:
        category = c.category or ("economique" if c.name in _ECONOMIC else "demarches")
        cols.append(replace(c, personal=True, privacy=EVENT if c.privacy == NONE else c.privacy, category=category))
    return Table(name, "marts", meaning, tuple(cols), key=key)


_ECONOMIC = ("amount", "currency", "unpaid", "overdue")


def _pk(mart: str) -> MartColumn:
    return M("citizen_pk", "text", _PK_MEANING, nullable=False, privacy=PSEUDONYMISED, category="identite",
             source=f"golden.citizen.citizen_id, keyed hash with the '{mart}' mart key")


_AGE = M("age_band", "text", "age band at the build date: 0-5, 6-10, 11-17, 18-29, 30-44, 45-59, 60-74, 75+, "
         f"or '{UNKNOWN}'", nullable=False, privacy=QUASI, category="vie_personnelle",
         source="golden.citizen.birth_date (never published itself)")
_HOUSEHOLD = M("household_type", "text", "personne seule, couple ou cohabitation (no minor), famille (two adults "
               f"or more with minors), famille monoparentale (one adult with minors), or '{UNKNOWN}' (no foyer known)",
               nullable=False, privacy=QUASI, category="vie_personnelle",
               source="golden.household_member / golden.household (members and minors of the citizen's current foyer)")
_SERVICE = M("service", "text", f"the service concerned as the silo names it ('{UNKNOWN}' when empty)",
             nullable=False, source="core.interaction.service")
_STATUS = M("status", "text", "the silo's status, lower case", source="core.interaction.status")


def _month(what: str, src: str, nullable: bool = True) -> MartColumn:
    return M(f"{what}_month", "text", f"month {what.replace('_', ' ')} (YYYY-MM, UTC)", nullable=nullable,
             source=f"core.interaction.{src}, truncated to the month")


DIM_CITIZEN = _row_level(
    "dim_citizen",
    "One row per resolved citizen, pseudonymised: coarse attributes and how many silos and services know them.",
    (
        _pk("citizen"),
        _AGE,
        M("commune_code", "text", f"INSEE code of the commune of residence where a silo gives it; '{OTHER_COMMUNE}' "
          f"for a commune with fewer than {MIN_CELL} citizens here, '{UNKNOWN}' when unknown", nullable=False,
          privacy=QUASI, category="localisation",
          source="core.person_record.city_code of the record the golden address came from (golden.citizen_attribute)"),
        _HOUSEHOLD,
        M("silos", "text", "comma-separated silos that know the citizen (finance, family, ...)", nullable=False,
          source="golden.citizen.source_systems"),
        M("silo_count", "int", "number of silos that know the citizen", nullable=False,
          source="golden.citizen.source_systems"),
        M("record_count", "int", "source records linked to the citizen (more than one: duplicates the hub found)",
          nullable=False, source="golden.citizen.record_count"),
        M("services_used", "text", "comma-separated services of the citizen's interactions (empty: none)",
          nullable=False, source="core.interaction.service through golden.citizen_link"),
        M("service_count", "int", "number of distinct services the citizen dealt with", nullable=False,
          source="core.interaction.service through golden.citizen_link"),
        M("conflicting_attributes", "int", "golden attributes the silos disagreed on, settled by survivorship",
          nullable=False, source="golden.citizen_attribute.conflict"),
        M("open_discrepancies", "int", "silo records still holding a value that differs from the golden one",
          nullable=False, source="golden.discrepancy"),
    ),
    key=("citizen_pk",),
)

FCT_INTERACTION = _row_level(
    "fct_interaction",
    "One row per interaction of any kind (request, ticket, invoice, enrolment...), with delays and legal deadlines.",
    (
        _pk("interaction"),
        _AGE,
        _HOUSEHOLD,
        M("kind", "text", "demande, facture, paiement, inscription, subvention, ticket, rendez-vous", nullable=False,
          source="core.interaction.kind"),
        _SERVICE,
        M("channel", "text", f"guichet, web, email, telephone, courrier... ('{UNKNOWN}' when empty)", nullable=False,
          source="core.interaction.channel"),
        _STATUS,
        _month("opened", "opened_at", nullable=False),
        _month("closed", "closed_at"),
        M("delay_days", "int", "days from opening to closing (UTC dates; null while open)",
          source="core.interaction.opened_at, closed_at"),
        M("pending", "bool", "a request (demande, subvention, inscription) still awaiting its answer at the build",
          nullable=False, source="core.interaction.kind, status, closed_at (warehouse/timeline.py rules)"),
        M("silence", "text", "what silence means at the legal deadline of a pending request: acceptation or rejet "
          "(CRPA L.231-1 / L.231-4); null when none", source="warehouse/timeline.py PROCEDURES"),
        M("deadline_state", "text", "of a pending request at the build: depasse (deadline passed), proche (within "
          "15 days), en_cours, sans_delai (no legal deadline); null when not pending",
          source="core.interaction.due_at, else opened_at + the procedure's delay (warehouse/timeline.py)"),
    ),
)

FCT_INVOICE = _row_level(
    "fct_invoice",
    "One row per invoice (interaction of kind facture): amounts, payment and arrears.",
    (
        _pk("invoice"),
        _AGE,
        _HOUSEHOLD,
        _SERVICE,
        _STATUS,
        _month("issued", "opened_at", nullable=False),
        M("due_month", "text", "month the invoice falls due (YYYY-MM)", source="core.interaction.due_at"),
        M("amount", "money", "amount invoiced", source="core.interaction.amount"),
        M("currency", "text", "ISO 4217", source="core.interaction.currency"),
        M("unpaid", "bool", "issued and not paid (statuses emise, impayee)", nullable=False,
          source="core.interaction.status"),
        M("overdue", "bool", "unpaid past its due date at the build", nullable=False,
          source="core.interaction.status, due_at"),
    ),
)

FCT_ENROLMENT = _row_level(
    "fct_enrolment",
    "One row per enrolment (interaction of kind inscription): cantine, périscolaire, centre de loisirs...",
    (
        _pk("enrolment"),
        _AGE,
        _HOUSEHOLD,
        _SERVICE,
        _STATUS,
        _month("opened", "opened_at", nullable=False),
        M("school_year", "text", "school year of the start, e.g. 2025-2026 (September to August)", nullable=False,
          source="core.interaction.opened_at"),
        M("ended_month", "text", "month the enrolment ended or ends (YYYY-MM)", source="core.interaction.closed_at"),
    ),
)

FCT_SUBSIDY = _row_level(
    "fct_subsidy",
    "One row per subsidy application (interaction of kind subvention), by the person acting for the association.",
    (
        _pk("subsidy"),
        _AGE,
        _SERVICE,
        _STATUS,
        _month("opened", "opened_at", nullable=False),
        _month("closed", "closed_at"),
        M("amount", "money", "amount applied for or granted", source="core.interaction.amount"),
        M("currency", "text", "ISO 4217", source="core.interaction.currency"),
        M("delay_days", "int", "days from application to decision (null while open)",
          source="core.interaction.opened_at, closed_at"),
    ),
)


def _count(name: str, meaning: str) -> MartColumn:
    return M(name, "bigint", f"{meaning} (null when suppressed)", privacy=AGGREGATE, source="the marts' facts")


_PEOPLE = _count("people", f"distinct people in the cell; published only from {MIN_CELL}")
_SUPPRESSED = M("suppressed", "bool", f"the cell's figures are hidden: under {MIN_CELL} people (primary), or "
                "hidden so that a total cannot reveal another hidden cell (complementary)", nullable=False,
                privacy=AGGREGATE, source="warehouse/marts.py suppression")


def _dim(name: str, meaning: str, source: str) -> MartColumn:
    return M(name, "text", f"{meaning}; '{ALL}' on a total row", nullable=False, privacy=AGGREGATE, source=source)


AGG_REQUESTS = Table(
    "agg_requests", "marts",
    "Requests (demandes, tickets, inscriptions, subventions, rendez-vous) per service, channel and month opened, "
    "with every total.",
    (
        _dim("service", "service", "marts.fct_interaction.service"),
        _dim("channel", "channel", "marts.fct_interaction.channel"),
        _dim("month", "month opened (YYYY-MM)", "marts.fct_interaction.opened_month"),
        _count("requests", "requests opened"),
        _PEOPLE,
        _SUPPRESSED,
    ),
)

AGG_PROCESSING_DELAY = Table(
    "agg_processing_delay", "marts",
    "Processing delays of closed requests (days from opening to closing) per service and month closed.",
    (
        _dim("service", "service", "marts.fct_interaction.service"),
        _dim("month", "month closed (YYYY-MM)", "marts.fct_interaction.closed_month"),
        _count("closed_requests", "requests closed"),
        _PEOPLE,
        M("median_days", "double", "median delay in days (null when suppressed)", privacy=AGGREGATE,
          source="marts.fct_interaction.delay_days"),
        M("p90_days", "double", "90th percentile of the delay in days (null when suppressed)", privacy=AGGREGATE,
          source="marts.fct_interaction.delay_days"),
        _SUPPRESSED,
    ),
)

AGG_DEADLINES = Table(
    "agg_deadlines", "marts",
    "Pending requests at the build per service, meaning of silence and deadline state (depasse, proche, "
    "en_cours, sans_delai).",
    (
        _dim("service", "service", "marts.fct_interaction.service"),
        _dim("silence", "acceptation, rejet or 'sans objet' (no legal deadline)", "marts.fct_interaction.silence"),
        _dim("deadline_state", "depasse, proche, en_cours or sans_delai", "marts.fct_interaction.deadline_state"),
        _count("requests", "pending requests"),
        _PEOPLE,
        _SUPPRESSED,
    ),
)

AGG_UNPAID = Table(
    "agg_unpaid", "marts",
    "Unpaid invoices at the build per service and whether they are past due, with amounts.",
    (
        _dim("service", "service", "marts.fct_invoice.service"),
        _dim("due_state", "echue (past due) or non_echue", "marts.fct_invoice.overdue"),
        M("currency", "text", "ISO 4217 (amounts are never added across currencies)", nullable=False,
          privacy=AGGREGATE, source="marts.fct_invoice.currency"),
        _count("invoices", "unpaid invoices"),
        _PEOPLE,
        M("amount", "money", "total unpaid (null when suppressed)", privacy=AGGREGATE,
          source="marts.fct_invoice.amount"),
        _SUPPRESSED,
    ),
)

AGG_CITIZENS = Table(
    "agg_citizens", "marts",
    "Citizens per age band, household type and commune, with every total.",
    (
        _dim("age_band", "age band", "marts.dim_citizen.age_band"),
        _dim("household_type", "household type", "marts.dim_citizen.household_type"),
        _dim("commune_code", "commune", "marts.dim_citizen.commune_code"),
        _PEOPLE,
        _SUPPRESSED,
    ),
)

AGG_DESILO = Table(
    "agg_desilo", "marts",
    "How much the hub de-silos: citizens per number of silos that know them, with their source records.",
    (
        _dim("silo_count", "number of silos that know the citizen (1, 2, 3, 4+)", "marts.dim_citizen.silo_count"),
        _PEOPLE,
        _count("records", "source records of these citizens (records - people: duplicates found across silos)"),
        _count("conflicting_attributes", "attributes the silos disagreed on, settled in the golden record"),
        _count("open_discrepancies", "silo records still to correct (worklists)"),
        _SUPPRESSED,
    ),
)

AGG_SILO_OVERLAP = Table(
    "agg_silo_overlap", "marts",
    "Citizens known to both of two silos (the diagonal: known to that silo); not additive, so no total row.",
    (
        M("silo_a", "text", "a silo", nullable=False, privacy=AGGREGATE, source="marts.dim_citizen.silos"),
        M("silo_b", "text", "another silo, or the same one (diagonal)", nullable=False, privacy=AGGREGATE,
          source="marts.dim_citizen.silos"),
        _PEOPLE,
        _SUPPRESSED,
    ),
)

MART_BUILD = Table(
    "mart_build", "marts",
    "The build the marts come from: when, from which resolution run, rows per table.",
    (
        M("table_name", "text", "a marts table", nullable=False, source="warehouse/marts.py"),
        M("row_count", "bigint", "its rows", nullable=False, source="warehouse/marts.py"),
        M("run_id", "text", "the resolution run the golden layer came from", source="golden.resolution_run.run_id"),
        M("built_at", "timestamptz", "when the marts were built (the date ages and deadlines are computed at)",
          nullable=False, source="warehouse/marts.py"),
    ),
    key=("table_name",),
)

MARTS: tuple[Mart, ...] = (
    Mart("citizen", (DIM_CITIZEN,)),
    Mart("interaction", (FCT_INTERACTION,)),
    Mart("invoice", (FCT_INVOICE,)),
    Mart("enrolment", (FCT_ENROLMENT,)),
    Mart("subsidy", (FCT_SUBSIDY,)),
    Mart("aggregates", (AGG_REQUESTS, AGG_PROCESSING_DELAY, AGG_DEADLINES, AGG_UNPAID, AGG_CITIZENS, AGG_DESILO,
                        AGG_SILO_OVERLAP, MART_BUILD), keyed=False),
)
KEYED_MARTS = tuple(m.name for m in MARTS if m.keyed)
MART_TABLES: tuple[Table, ...] = tuple(t for m in MARTS for t in m.tables)
AGG_TABLES: tuple[Table, ...] = tuple(t for t in MART_TABLES if t.name.startswith("agg_"))


def mart_of(table: Table) -> Mart:
    return next(m for m in MARTS if table in m.tables)


def privacy(column: Column) -> str:
    return column.privacy if isinstance(column, MartColumn) else NONE
