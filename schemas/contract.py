"""The canonical contract: every table the hub's own layers hold, as data.

One place says what each column is called, its type and what it means. The warehouse
creates its tables from here, the staging models must produce exactly these columns, the
quality gate checks against them and the docs are generated from them.

Logical types are portable: each maps to one DuckDB type, one PostgreSQL type and one
Arrow type (see ``SQL_TYPES`` / ``arrow_type``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# Certification (proof) levels of an identity attribute, lowest first.
CERTIFICATION_LEVELS = {
    0: "declaratif",  # what the citizen typed
    1: "justificatif",  # a document checked by an agent
    2: "franceconnect",  # FranceConnect / an authentic source
}

# ``personne`` / ``membre``: the neutral roles, for a source that records none (no role-specific rule
# applies to them).
ROLES = ("usager", "parent", "enfant", "debiteur", "dirigeant", "contact", "demandeur", "compte", "personne")
HOUSEHOLD_ROLES = ("responsable", "conjoint", "enfant", "membre")
INTERACTION_KINDS = (
    "demande",
    "facture",
    "paiement",
    "inscription",
    "subvention",
    "ticket",
    "rendez-vous",
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of SQL_TYPES
    meaning: str
    nullable: bool = True
    personal: bool = False  # personal data in the GDPR sense (drives the register and log hygiene)


@dataclass(frozen=True)
class Table:
    name: str
    schema: str  # warehouse schema (namespace) the table lives in
    meaning: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# logical type -> (DuckDB, PostgreSQL)
SQL_TYPES: dict[str, tuple[str, str]] = {
    "text": ("VARCHAR", "TEXT"),
    "int": ("INTEGER", "INTEGER"),
    "bigint": ("BIGINT", "BIGINT"),
    "double": ("DOUBLE", "DOUBLE PRECISION"),
    "bool": ("BOOLEAN", "BOOLEAN"),
    "date": ("DATE", "DATE"),
    "timestamptz": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
    "money": ("DECIMAL(14,2)", "NUMERIC(14,2)"),
    "json": ("VARCHAR", "TEXT"),  # JSON text: portable, and readable by both engines' JSON functions
}


def arrow_type(logical: str) -> pa.DataType:
    return {
        "text": pa.string(),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "money": pa.decimal128(14, 2),
        "json": pa.string(),
    }[logical]


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in table.columns])


C = Column

# ---------------------------------------------------------------- canonical (what staging produces)

PERSON_RECORD = Table(
    "person_record",
    "core",
    "One person as one source system knows them.",
    (
        C("record_key", "text", "`<source_system>:<source_id>`, unique across the hub", nullable=False),
        C("source_system", "text", "the silo: finance, family, associations, ...", nullable=False),
        C("source_id", "text", "the record's id in its silo (entity-prefixed where the silo has several)",
          nullable=False),
        C("role", "text", "usager, parent, enfant, debiteur, dirigeant, contact, demandeur, compte (holder of an "
          "online account); personne when the silo records no role", nullable=False),
        C("given_names", "text", "all prénoms known, in order, space-separated, as the silo wrote them",
          personal=True),
        C("birth_name", "text", "nom de naissance, when the silo distinguishes it", personal=True),
        C("usage_name", "text", "nom d'usage (or the only name the silo has)", personal=True),
        C("sex", "text", "F or M", personal=True),
        C("birth_date", "date", "date of birth (first of month/year when only those are known)",
          personal=True),
        C("birth_date_precision", "text", "day, month or year"),
        C("birth_place_code", "text", "INSEE COG code of the commune of birth", personal=True),
        C("birth_country_code", "text", "ISO 3166 alpha-2 country of birth", personal=True),
        C("email", "text", "e-mail address as given", personal=True),
        C("phone", "text", "phone number, E.164 (+33…) when it could be normalised", personal=True),
        C("address_line", "text", "street line (number, type, name)", personal=True),
        C("postcode", "text", "postcode", personal=True),
        C("city", "text", "commune name", personal=True),
        C("city_code", "text", "INSEE COG code of the commune", personal=True),
        C("country", "text", "ISO 3166 alpha-2 country of the address"),
        C("certification_level", "int", "0 declaratif, 1 justificatif checked by an agent, 2 FranceConnect",
          nullable=False),
        C("updated_at", "timestamptz", "last change in the silo"),
        C("deleted_at", "timestamptz", "when the silo deleted the record (null when alive)"),
    ),
    key=("record_key",),
)

HOUSEHOLD_MEMBERSHIP = Table(
    "household_membership",
    "core",
    "A person's place in a household as one silo groups people (family, debtor group).",
    (
        C("source_system", "text", "the silo", nullable=False),
        C("household_id", "text", "`<source_system>:<the silo's grouping id>`", nullable=False),
        C("record_key", "text", "the member's person_record", nullable=False),
        C("role", "text", "responsable, conjoint or enfant; membre when the silo records no role", nullable=False),
        C("valid_from", "date", "membership start when known"),
        C("valid_to", "date", "membership end when known (null: current)"),
    ),
    key=("household_id", "record_key"),
)

INTERACTION = Table(
    "interaction",
    "core",
    "Anything a citizen asked for, did or owes, in any silo.",
    (
        C("interaction_key", "text", "`<source_system>:<source_id>`", nullable=False),
        C("source_system", "text", "the silo", nullable=False),
        C("source_id", "text", "id in the silo (entity-prefixed)", nullable=False),
        C("record_key", "text", "the person_record it belongs to", nullable=False),
        C("kind", "text", "demande, facture, paiement, inscription, subvention, ticket, rendez-vous",
          nullable=False),
        C("service", "text", "the service concerned (cantine, eau, vie associative, ...)"),
        C("title", "text", "short label"),
        C("status", "text", "the silo's status, lower case"),
        C("opened_at", "timestamptz", "when it started / was issued", nullable=False),
        C("closed_at", "timestamptz", "when it ended / was paid / was decided"),
        C("due_at", "timestamptz", "deadline: payment due date or legal answer deadline"),
        C("amount", "money", "amount in `currency`"),
        C("currency", "text", "ISO 4217"),
        C("channel", "text", "guichet, web, courrier, telephone, ..."),
        C("details", "json", "anything else the silo says, as a JSON object"),
    ),
    key=("interaction_key",),
)

ORGANISATION = Table(
    "organisation",
    "core",
    "An association or company that people act for.",
    (
        C("organisation_key", "text", "`<source_system>:<source_id>`", nullable=False),
        C("source_system", "text", "the silo", nullable=False),
        C("source_id", "text", "id in the silo", nullable=False),
        C("name", "text", "name", nullable=False),
        C("rna", "text", "RNA number (W + 9 digits)"),
        C("siren", "text", "SIREN (9 digits)"),
        C("siret", "text", "SIRET (14 digits)"),
        C("address_line", "text", "street line"),
        C("postcode", "text", "postcode"),
        C("city", "text", "commune"),
    ),
    key=("organisation_key",),
)

ORGANISATION_ROLE = Table(
    "organisation_role",
    "core",
    "A person's role in an organisation (président, trésorier, contact, ...).",
    (
        C("organisation_key", "text", "the organisation", nullable=False),
        C("record_key", "text", "the person_record", nullable=False),
        C("role", "text", "the function, lower case", nullable=False),
        C("valid_from", "date", "start when known"),
        C("valid_to", "date", "end when known"),
    ),
    key=("organisation_key", "record_key", "role"),
)

CANONICAL_TABLES = (PERSON_RECORD, HOUSEHOLD_MEMBERSHIP, INTERACTION, ORGANISATION, ORGANISATION_ROLE)

# A raw column the connectors add to a full export's rows: when an export first stopped listing the
# row (null while listed). Staging turns it into ``deleted_at``; bookkeeping, not personal data.
RAW_DELETED_AT = "_deleted_at"

# ---------------------------------------------------------------- operations

QUARANTINE = Table(
    "quarantine",
    "ops",
    "Source rows not loaded, with the reason; nothing is dropped silently.",
    (
        C("run_id", "text", "the pipeline run", nullable=False),
        C("source_system", "text", "the silo", nullable=False),
        C("entity", "text", "source entity or canonical table", nullable=False),
        C("stage", "text", "extract (could not be read) or quality (failed the gate)", nullable=False),
        C("locator", "text", "where: file:line, page/offset, table:key", nullable=False),
        C("field", "text", "the offending field, when one"),
        C("reason_code", "text", "stable machine code, e.g. bad_date, missing_key, wrong_column_count",
          nullable=False),
        C("reason", "text", "human explanation (never contains the value itself)", nullable=False),
        C("payload", "json", "the row as read, so it can be fixed and replayed", personal=True),
        C("quarantined_at", "timestamptz", "when", nullable=False),
    ),
)

SOURCE_RUN = Table(
    "source_run",
    "ops",
    "Per run, per source entity: rows read, loaded and quarantined (read = loaded + quarantined).",
    (
        C("run_id", "text", "the pipeline run", nullable=False),
        C("source_system", "text", "the silo", nullable=False),
        C("entity", "text", "source entity", nullable=False),
        C("rows_read", "bigint", "rows the source delivered", nullable=False),
        C("rows_loaded", "bigint", "rows stored in raw", nullable=False),
        C("rows_quarantined", "bigint", "rows set aside", nullable=False),
        C("status", "text", "ok or failed", nullable=False),
        C("error", "text", "the error when failed (no personal data)"),
        C("finished_at", "timestamptz", "when", nullable=False),
        # null in rows written before they existed
        C("rows_deleted", "bigint", "rows a full export no longer lists, marked deleted in raw (not read)"),
        C("rows_recovered", "bigint", "rows of load packages an aborted run left, loaded by this run (not read)"),
    ),
    key=("run_id", "source_system", "entity"),
)

PIPELINE_RUN = Table(
    "pipeline_run",
    "ops",
    "One row per run (`hub run`, or an Airflow DAG run): how it ended, when, which sources failed, how long "
    "each step took. Rows per "
    "source are in ops.source_run, the quality gate's in ops.stage_run, the release in "
    "golden.resolution_release (warehouse/ops.py run_report reads them together).",
    (
        C("run_id", "text", "the run", nullable=False),
        C("status", "text", "running, ok, partial (a source failed: its last good data was used), failed, "
          "refused (the release guard refused the release) or aborted (its process died)", nullable=False),
        C("started_at", "timestamptz", "when it took the run lock", nullable=False),
        C("finished_at", "timestamptz", "when it ended (for aborted: when the next run found it dead)"),
        C("pid", "bigint", "its process", nullable=False),
        C("host", "text", "its machine", nullable=False),
        C("failed_sources", "json", 'sources that failed: [{"source": ..., "error": ...}] (no personal data)'),
        C("timings", "json", 'seconds per step, e.g. {"ingest finance": 3.2, "canonical": 4.1, "resolve": 9.8}'),
        C("vetoes", "json", "pairs the matching guards refused, per guard"),
        C("message", "text", "why it failed or was refused (no personal data)"),
        C("dag_id", "text", "the Airflow DAG that ran it (its steps in tasks, under one hub run id); "
          "empty for `hub run`"),
    ),
    key=("run_id",),
)

STAGE_RUN = Table(
    "stage_run",
    "ops",
    "Per run, per canonical table and silo: rows staged, passed the quality gate, quarantined "
    "(staged = passed + quarantined).",
    (
        C("run_id", "text", "the pipeline run", nullable=False),
        C("table_name", "text", "the canonical table (person_record, interaction, ...)", nullable=False),
        C("source_system", "text", "the silo", nullable=False),
        C("rows_staged", "bigint", "rows the staging models produced", nullable=False),
        C("rows_passed", "bigint", "rows written to the core table", nullable=False),
        C("rows_quarantined", "bigint", "rows set aside by the quality gate", nullable=False),
        C("finished_at", "timestamptz", "when", nullable=False),
    ),
    key=("run_id", "table_name", "source_system"),
)

ACCESS_LOG = Table(
    "access_log",
    "ops",
    "Append-only: who read which citizen, when, for which purpose, through which channel, which fields.",
    (
        C("read_at", "timestamptz", "when the citizen was read", nullable=False),
        C("reader", "text", "who read (agent login, service account)", nullable=False),
        C("purpose", "text", "why: the processing purpose the reader acted for", nullable=False),
        C("channel", "text", "cli, desk, api, gdpr-export, ...", nullable=False),
        # the desk's readers: which collectivité and which register service the agent acted for
        C("collectivite", "text", "the reader's collectivité (desk and API reads; null elsewhere)"),
        C("service", "text", "the reader's service, a register service id (desk and API reads; null elsewhere)"),
        C("citizen_id", "text", "the citizen read", nullable=False),
        C("fields", "json", "JSON array of the fields shown (names, never values)", nullable=False),
        # CNIL deliberation 2021-122: the operation and the recipient; the hash chain makes an edit detectable
        C("operation", "text", "create, read, update, delete or export (null in rows written before it existed: read)"),
        C("recipient", "text", "who the data went to when it left the reader (a service, the person, a body)"),
        C("seq", "bigint", "position in the log (gaps only where the retention purge removed rows)"),
        C("prev_hash", "text", "row_hash of the row before (or of the purge anchor)"),
        C("row_hash", "text", "sha256 over prev_hash and this row's content (warehouse/access_log.py)"),
    ),
)

# ---------------------------------------------------------------- golden

CITIZEN = Table(
    "citizen",
    "golden",
    "One row per resolved person: the hub's persistent id and surviving attributes.",
    (
        C("citizen_id", "text", "persistent id of the person in the hub", nullable=False),
        C("given_names", "text", "surviving prénoms", personal=True),
        C("birth_name", "text", "surviving nom de naissance", personal=True),
        C("usage_name", "text", "surviving nom d'usage", personal=True),
        C("sex", "text", "F or M", personal=True),
        C("birth_date", "date", "surviving birth date", personal=True),
        C("email", "text", "surviving e-mail", personal=True),
        C("phone", "text", "surviving phone (E.164)", personal=True),
        C("address_line", "text", "surviving address line", personal=True),
        C("postcode", "text", "surviving postcode", personal=True),
        C("city", "text", "surviving commune", personal=True),
        C("record_count", "int", "number of linked source records", nullable=False),
        C("source_systems", "text", "comma-separated silos that know the person", nullable=False),
        C("updated_at", "timestamptz", "when the golden row was last rebuilt", nullable=False),
    ),
    key=("citizen_id",),
)

CITIZEN_LINK = Table(
    "citizen_link",
    "golden",
    "Which citizen each source person_record belongs to, and how sure the hub is.",
    (
        C("record_key", "text", "the source record", nullable=False),
        C("citizen_id", "text", "the citizen", nullable=False),
        C("match_probability", "double", "best pairwise probability tying it into its cluster "
          "(1.0 for a citizen of one record)", nullable=False),
        C("model_version", "text", "the Splink model that scored it", nullable=False),
        C("run_id", "text", "the resolution run", nullable=False),
        C("match_weight", "double", "match weight (bits) of the edge that tied it into its cluster "
          "(null alone, or for a human must-link the model did not score)"),
        C("explanation", "json", "why: that edge's per-comparison contributions in bits, e.g. "
          '{"first_name": 9.1, "birth_date": 7.4, "email": -1.2} (comparisons unknown on a side are left '
          'out), or {"decision": "must-link"}; null alone'),
        C("linked_via", "text", "the record at the other end of that edge (null alone)"),
    ),
    key=("record_key",),
)

RESOLUTION_RUN = Table(
    "resolution_run",
    "golden",
    "One row per resolution run: what it saw and what it produced.",
    (
        C("run_id", "text", "the run", nullable=False),
        C("model_version", "text", "model used", nullable=False),
        C("records", "bigint", "person records resolved", nullable=False),
        C("pairs_scored", "bigint", "candidate pairs scored", nullable=False),
        C("citizens", "bigint", "citizens produced", nullable=False),
        C("threshold", "double", "match probability threshold used for clustering", nullable=False),
        C("finished_at", "timestamptz", "when", nullable=False),
    ),
    key=("run_id",),
)

CITIZEN_ATTRIBUTE = Table(
    "citizen_attribute",
    "golden",
    "Provenance of every golden attribute: the source record it came from and the rule that chose it.",
    (
        C("citizen_id", "text", "the citizen", nullable=False),
        C("attribute", "text", "the golden column (given_names, birth_name, ..., address_line, postcode, city)",
          nullable=False),
        C("value", "text", "the surviving value as text (dates ISO 8601)", personal=True),
        C("record_key", "text", "the source person_record the value was taken from", nullable=False),
        C("source_system", "text", "that record's silo", nullable=False),
        C("certification_level", "int", "that record's proof level: 0 declaratif, 1 justificatif, 2 franceconnect",
          nullable=False),
        C("observed_at", "timestamptz", "when the silo last changed that record"),
        C("rule", "text", "the criterion that decided: unanimous, certification, source_priority, recency, "
          "frequency, tie_break, or fallback (e.g. usage name standing for an unknown birth name)",
          nullable=False),
        C("conflict", "bool", "linked records hold different usable values for this attribute", nullable=False),
        C("candidates", "int", "distinct usable values among the citizen's records", nullable=False),
    ),
    key=("citizen_id", "attribute"),
)

DISCREPANCY = Table(
    "discrepancy",
    "golden",
    "Worklists: source records whose value differs from the golden one, so each silo is fixed once.",
    (
        C("source_system", "text", "the silo holding the differing record", nullable=False),
        C("record_key", "text", "the record to fix", nullable=False),
        C("citizen_id", "text", "the citizen", nullable=False),
        C("attribute", "text", "usage_name, birth_name, birth_date, email, phone or address", nullable=False),
        C("silo_value", "text", "what the silo holds", personal=True),
        C("golden_value", "text", "what the hub believes", personal=True),
        C("golden_record_key", "text", "the record the golden value came from", nullable=False),
        C("golden_source_system", "text", "that record's silo", nullable=False),
        C("golden_certification_level", "int", "proof level of the golden value", nullable=False),
    ),
    key=("record_key", "attribute"),
)

HOUSEHOLD = Table(
    "household",
    "golden",
    "A foyer as the hub resolves it: the silos' groupings of the same people merged into one.",
    (
        C("household_id", "text", "the foyer id, kept across runs (first `foyer:<smallest grouping or citizen id>`)",
          nullable=False),
        C("address_line", "text", "golden address of the foyer's responsable", personal=True),
        C("postcode", "text", "postcode", personal=True),
        C("city", "text", "commune", personal=True),
        C("members", "int", "current members", nullable=False),
        C("minors", "int", "current members under 18 (from the golden birth date)", nullable=False),
        C("source_households", "text", "comma-separated silo groupings merged (empty: from shared address)",
          nullable=False),
        C("evidence", "text", "silo_grouping or shared_address", nullable=False),
        C("updated_at", "timestamptz", "when the foyer was rebuilt", nullable=False),
    ),
    key=("household_id",),
)

HOUSEHOLD_MEMBER = Table(
    "household_member",
    "golden",
    "A citizen's dated place in a foyer, with the role the hub assigns.",
    (
        C("household_id", "text", "the foyer", nullable=False),
        C("citizen_id", "text", "the member", nullable=False),
        C("role", "text", "responsable, conjoint or enfant", nullable=False),
        C("valid_from", "date", "earliest start any silo gives"),
        C("valid_to", "date", "end (null: current)"),
        C("is_minor", "bool", "under 18 at the build date (null when the birth date is unknown)"),
        C("source_households", "text", "comma-separated silo groupings that put the citizen there",
          nullable=False),
    ),
    key=("household_id", "citizen_id"),
)

# ---------------------------------------------------------------- identity decisions and releases

MATCH_DECISION = Table(
    "match_decision",
    "golden",
    "Human identity decisions, honoured by every later resolution run until revoked (never by a rerun).",
    (
        C("decision_id", "text", "D + 12 hex, unique", nullable=False),
        C("kind", "text", "must_link, cannot_link (between two records) or split (of a citizen into groups)",
          nullable=False),
        C("record_key_l", "text", "first record of a must_link / cannot_link (the smaller key)"),
        C("record_key_r", "text", "second record of a must_link / cannot_link"),
        C("groups", "json", "split: JSON array of arrays of record keys that must stay apart"),
        C("citizen_id", "text", "the citizen the decision was taken on, when one"),
        C("decided_by", "text", "the agent's login", nullable=False),
        C("decided_at", "timestamptz", "when", nullable=False),
        C("reason", "text", "why, in the agent's words", nullable=False, personal=True),
        C("queue_id", "text", "the review-queue entry it settled, when one"),
        C("revoked_at", "timestamptz", "when it was revoked (null: in force)"),
        C("revoked_by", "text", "who revoked it"),
        C("revoke_reason", "text", "why it was revoked", personal=True),
    ),
    key=("decision_id",),
)

REVIEW_QUEUE = Table(
    "review_queue",
    "golden",
    "Pairs of records the model is unsure about, with no decision yet: for an agent to accept or reject.",
    (
        C("queue_id", "text", "Q + 12 hex of the pair: the same pair keeps its id from run to run", nullable=False),
        C("record_key_l", "text", "first record (the smaller key)", nullable=False),
        C("record_key_r", "text", "second record", nullable=False),
        C("match_probability", "double", "the model's probability that they are one person", nullable=False),
        C("match_weight", "double", "the model's match weight (bits)", nullable=False),
        C("explanation", "json", "per-comparison contributions in bits (see citizen_link.explanation)"),
        C("citizen_id_l", "text", "the citizen the first record belongs to", nullable=False),
        C("citizen_id_r", "text", "the citizen the second record belongs to", nullable=False),
        C("queued_at", "timestamptz", "when the pair first entered the queue", nullable=False),
        C("run_id", "text", "the resolution run that last queued it", nullable=False),
    ),
    key=("queue_id",),
)

RESOLUTION_RELEASE = Table(
    "resolution_release",
    "golden",
    "Per resolution run: what changed against the previous publication, and the release guard's verdict.",
    (
        C("run_id", "text", "the run", nullable=False),
        C("previous_run_id", "text", "the publication compared with (null: first run)"),
        C("citizens_before", "bigint", "citizens in the previous publication", nullable=False),
        C("citizens_after", "bigint", "citizens this run produced", nullable=False),
        C("new_citizens", "bigint", "citizens with a fresh id", nullable=False),
        C("merged_citizens", "bigint", "citizens holding records of two or more previous citizens", nullable=False),
        C("split_citizens", "bigint", "previous citizens whose records now belong to two or more citizens",
          nullable=False),
        C("unchanged_citizens", "bigint", "citizens with the same id and exactly the same records", nullable=False),
        C("retired_ids", "bigint", "previous ids no cluster kept (kept as aliases)", nullable=False),
        C("largest_before", "bigint", "records in the previous publication's largest citizen", nullable=False),
        C("largest_after", "bigint", "records in this run's largest citizen", nullable=False),
        C("size_histogram", "json", 'citizens by number of records, e.g. {"1": 8200, "2": 950, "10+": 3}',
          nullable=False),
        C("decisions_applied", "bigint", "human decisions in force during the run", nullable=False),
        C("must_links_refused", "bigint", "must-links not honoured because a cannot-link forbade them",
          nullable=False),
        C("review_queued", "bigint", "pairs left for human review", nullable=False),
        C("status", "text", "accepted, confirmed (abnormal, published on confirmation) or refused (not published)",
          nullable=False),
        C("guard_message", "text", "why the guard found the release abnormal (null when normal)"),
        C("confirmed_by", "text", "who confirmed an abnormal release"),
        C("recorded_at", "timestamptz", "when", nullable=False),
    ),
    key=("run_id",),
)

CITIZEN_ALIAS = Table(
    "citizen_alias",
    "golden",
    "Retired citizen ids: where their records went. An id, once issued, is never given to another person.",
    (
        C("old_id", "text", "the retired citizen id", nullable=False),
        C("new_id", "text", "the citizen holding most of its records (null when all were deleted)"),
        C("retired_at", "timestamptz", "when", nullable=False),
        C("run_id", "text", "the resolution run that retired it", nullable=False),
    ),
    key=("old_id",),
)

# ---------------------------------------------------------------- golden: the desk's search index
# Rebuilt from the published release at each publication (warehouse/search.py says how they are read).

CITIZEN_SEARCH = Table(
    "citizen_search",
    "golden",
    "The desk's search results: one row per published citizen, what a result shows.",
    (
        C("citizen_no", "int", "the citizen's number in this index, in name order (postings refer to it)",
          nullable=False),
        C("citizen_id", "text", "the citizen", nullable=False),
        C("given_names", "text", "golden prénoms", personal=True),
        C("birth_name", "text", "golden nom de naissance", personal=True),
        C("usage_name", "text", "golden nom d'usage", personal=True),
        C("birth_year", "int", "year of the golden birth date", personal=True),
        C("city", "text", "golden commune", personal=True),
        C("source_systems", "text", "comma-separated silos that know the person", nullable=False),
        C("systems_mask", "bigint", "those silos as bits (golden.citizen_search_system)", nullable=False),
    ),
    key=("citizen_no",),
)

CITIZEN_SEARCH_TERM = Table(
    "citizen_search_term",
    "golden",
    "The search vocabulary: every folded key a citizen is found by, per field.",
    (
        C("term_id", "int", "the term's number, in key order", nullable=False),
        C("field", "text", "given_names, birth_name, usage_name, birth_date, email, phone or postcode",
          nullable=False),
        C("key", "text", "the folded key: a name word (lefloch), an ISO date, a lower-case e-mail, an E.164 "
          "phone, a postcode", nullable=False, personal=True),
        C("citizens", "int", "how many citizens hold it", nullable=False),
    ),
    key=("term_id",),
)

CITIZEN_SEARCH_POSTING = Table(
    "citizen_search_posting",
    "golden",
    "Which citizens hold each search term, and which silos hold it for them.",
    (
        C("term_id", "int", "the term", nullable=False),
        C("citizen_no", "int", "the citizen (golden.citizen_search)", nullable=False, personal=True),
        C("origin_mask", "bigint", "who holds the key for that citizen: bit 0 the golden record, the others "
          "silos (golden.citizen_search_system)", nullable=False),
        C("citizen_mask", "bigint", "every silo knowing the citizen, as bits", nullable=False),
    ),
)

CITIZEN_SEARCH_VARIANT = Table(
    "citizen_search_variant",
    "golden",
    "The name terms found with one typo: each name term's key and its one-letter deletions, hashed "
    "(a typed word and its own deletions are looked up by equality: one edit, transpositions included).",
    (
        C("variant", "bigint", "64-bit hash (BLAKE2b) of the key or of the key with one letter deleted",
          nullable=False),
        C("term_id", "int", "the name term", nullable=False),
        C("field", "text", "the term's field", nullable=False),
        C("citizens", "int", "how many citizens hold the term", nullable=False),
    ),
)

CITIZEN_SEARCH_SYSTEM = Table(
    "citizen_search_system",
    "golden",
    "The bit each silo has in the search index's masks (bit 0: the golden record).",
    (
        C("source_system", "text", "the silo", nullable=False),
        C("bit", "int", "its bit, 1 to 62", nullable=False),
    ),
    key=("source_system",),
)

SEARCH_TABLES = (CITIZEN_SEARCH, CITIZEN_SEARCH_TERM, CITIZEN_SEARCH_POSTING, CITIZEN_SEARCH_VARIANT,
                 CITIZEN_SEARCH_SYSTEM)

# ---------------------------------------------------------------- GDPR: erasure, rectification, objection

SUPPRESSION = Table(
    "suppression",
    "gdpr",
    "Keyed hashes (HMAC-SHA256, key outside the warehouse) of erased people's identity keys: a later load "
    "drops a record matching one, so an erased person does not come back while a silo still holds them.",
    (
        C("key_hash", "text", "hex HMAC-SHA256 of one normalised identity key", nullable=False, personal=True),
        C("key_kind", "text", "record (a silo's record key), name_birth, name_email or name_phone", nullable=False),
        C("erasure_id", "text", "the erasure that recorded it", nullable=False),
        C("request_id", "text", "the rights request, when one"),
        C("created_at", "timestamptz", "when", nullable=False),
    ),
    key=("key_hash",),
)

RECTIFICATION = Table(
    "rectification",
    "gdpr",
    "Values corrected on the person's request (Art. 16): a candidate of its own in survivorship, winning "
    "over silo values of lower proof, on every later run.",
    (
        C("rectification_id", "text", "R + 12 hex", nullable=False),
        C("citizen_id", "text", "the citizen", nullable=False),
        C("attribute", "text", "the golden attribute corrected", nullable=False),
        C("value", "text", "the corrected value (dates ISO 8601)", nullable=False, personal=True),
        C("certification_level", "int", "proof level of the correction (0, 1, 2)", nullable=False),
        C("proof", "text", "what proved it (document seen, FranceConnect...)", personal=True),
        C("request_id", "text", "the rights request, when one"),
        C("decided_by", "text", "who recorded it", nullable=False),
        C("decided_at", "timestamptz", "when", nullable=False),
        C("revoked_at", "timestamptz", "when it stopped applying (null: in force)"),
    ),
    key=("rectification_id",),
)

OBJECTION = Table(
    "objection",
    "gdpr",
    "Objections (Art. 21) and restrictions: the person is hidden from that processing's reads.",
    (
        C("citizen_id", "text", "the citizen", nullable=False),
        C("processing_id", "text", "the register's processing objected to", nullable=False),
        C("request_id", "text", "the rights request, when one"),
        C("decided_by", "text", "who recorded it", nullable=False),
        C("decided_at", "timestamptz", "when", nullable=False),
        C("revoked_at", "timestamptz", "when it stopped applying (null: in force)"),
    ),
    key=("citizen_id", "processing_id"),
)

# ---------------------------------------------------------------- GDPR: the register of rights requests

# A request's status; labels as the DPO reads them.
DSR_KINDS = ("access", "erasure", "rectification", "objection")
DSR_STATUSES = {
    "a_traiter": "à traiter",
    "attente_identite": "en attente d'identité",
    "attente_services": "en attente des services",
    "clos": "clos",
    "refuse": "refusé avec motif",
}

DSR_REQUEST = Table(
    "dsr_request",
    "gdpr",
    "Rights requests (GDPR Art. 15-21): who asked what, how their identity was checked, and the deadlines "
    "(Art. 12(3): one calendar month from receipt, extendable by two when the person is told why in the first).",
    (
        C("request_id", "text", "DSR-<received yyyymmdd>-<6 hex>", nullable=False),
        C("kind", "text", "access, erasure, rectification or objection", nullable=False),
        C("status", "text", "a_traiter, attente_identite, attente_services, clos, refuse", nullable=False),
        C("channel", "text", "how it came: courrier, courriel, guichet, formulaire, telephone", nullable=False),
        C("subject_name", "text", "the person concerned, as the request names them", nullable=False, personal=True),
        C("subject_birth_date", "date", "their birth date, when given", personal=True),
        C("subject_email", "text", "their e-mail, when given", personal=True),
        C("subject_phone", "text", "their phone, when given", personal=True),
        C("subject_address", "text", "their postal address, when given (for the answer by post)", personal=True),
        C("citizen_id", "text", "the hub's citizen the request concerns, once identified", personal=True),
        C("on_behalf_of_minor", "bool", "a parent (legal representative) asks for their minor child",
          nullable=False),
        C("requester_name", "text", "who asks when not the person (the parent, a mandated person)", personal=True),
        C("requester_citizen_id", "text", "the requester's citizen, when known to the hub", personal=True),
        C("identity_check", "text", "how identity was checked: en_attente, coordonnees_connues, "
          "element_du_dossier, guichet, franceconnect, piece_identite (only on reasonable doubt)", nullable=False),
        C("identity_evidence", "text", "what was given and seen (never a copy of a document)", personal=True),
        C("identity_doubt", "text", "the reasonable doubt that justified asking for an identity document",
          personal=True),
        C("identity_checked_at", "timestamptz", "when identity was confirmed"),
        C("details", "text", "the request as the person worded it (scope, values to rectify...)", personal=True),
        C("received_at", "timestamptz", "when the request reached the authority", nullable=False),
        C("acknowledged_at", "timestamptz", "when receipt was acknowledged to the person"),
        C("due_date", "date", "one calendar month after receipt (31 January -> end of February)", nullable=False),
        C("extended_due_date", "date", "three calendar months after receipt, when extended"),
        C("extension_reason", "text", "why it was extended (Art. 12(3))"),
        C("extension_notified_at", "timestamptz", "when the person was told of the extension (within the first "
          "month)"),
        C("answered_at", "timestamptz", "when the answer was sent"),
        C("refusal_reason", "text", "why the request was refused (Art. 12(4): told to the person)"),
        C("created_by", "text", "the DPO (or deputy) who recorded it", nullable=False, personal=True),
        C("updated_at", "timestamptz", "last change", nullable=False),
    ),
    key=("request_id",),
)

DSR_EVENT = Table(
    "dsr_event",
    "gdpr",
    "A rights request's history and proofs, append-only: each step with who, when and what proves it.",
    (
        C("request_id", "text", "the request", nullable=False),
        C("event_at", "timestamptz", "when", nullable=False),
        C("event", "text", "created, acknowledged, identity_checked, status, extended, export, proof, closed, "
          "refused, note", nullable=False),
        C("actor", "text", "who (the DPO's login)", nullable=False, personal=True),
        C("detail", "text", "what happened, in words", personal=True),
        C("proof", "text", "the proof's reference: a file name, a letter's reference, an e-mail id"),
        C("proof_sha256", "text", "sha256 of the proof file when one (e.g. the access export sent)"),
    ),
)

GDPR_TABLES = (SUPPRESSION, RECTIFICATION, OBJECTION, DSR_REQUEST, DSR_EVENT)

GOLDEN_TABLES = (CITIZEN, CITIZEN_LINK, RESOLUTION_RUN, CITIZEN_ATTRIBUTE, DISCREPANCY, HOUSEHOLD,
                 HOUSEHOLD_MEMBER, MATCH_DECISION, REVIEW_QUEUE, RESOLUTION_RELEASE, CITIZEN_ALIAS, *SEARCH_TABLES)
OPS_TABLES = (QUARANTINE, SOURCE_RUN, STAGE_RUN, PIPELINE_RUN, ACCESS_LOG)
ALL_TABLES = CANONICAL_TABLES + OPS_TABLES + GOLDEN_TABLES + GDPR_TABLES
