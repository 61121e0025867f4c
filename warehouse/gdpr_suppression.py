"""The suppression list: erased people do not come back with the next load.

An erasure (:mod:`warehouse.gdpr_erase`) records, in ``gdpr.suppression``, keyed hashes
(HMAC-SHA256) of the person's normalised identity keys:

- ``record``: each silo record key the person had (``finance:tiers/123``);
- ``name_birth``: surname | first given name | birth date;
- ``name_email`` / ``name_phone``: surname | first given name | e-mail (lower case) / phone (digits, national
  prefix as +33).

Names are folded (upper case, accents and punctuation removed). The name is part of every
contact key, so a shared family e-mail or landline does not suppress the other members.

The key never enters the warehouse: ``$HUB_SUPPRESSION_KEY`` (the key itself), else
``$HUB_SUPPRESSION_KEY_FILE``, else ``<var_dir>/keys/suppression.key`` (created at the first
erasure, mode 0600; in production, a secrets mount outside the warehouse's disk and backups).
Without the key the hashes cannot be recomputed: a load with a non-empty suppression list and no
key stops rather than bring erased people back. Losing the key makes the list useless — back it
up with the other secrets.

At the canonical step (``warehouse.staging.build_canonical``), a staged person record matching a
hash, and every row of another canonical table pointing at such a record, is set aside: counted in
``ops.stage_run`` as quarantined and written to ``ops.quarantine`` with reason ``suppressed``, the
model's name as locator and no payload.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas.contract import PERSON_RECORD, SUPPRESSION, Table
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)

KEY_ENV = "HUB_SUPPRESSION_KEY"
KEY_FILE_ENV = "HUB_SUPPRESSION_KEY_FILE"
REASON = "suppressed"


class SuppressionKeyMissing(RuntimeError):
    """The suppression list has entries but its key cannot be found: nothing is loaded."""


def key_path(var_dir: Path | None) -> Path | None:
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV])
    return var_dir / "keys" / "suppression.key" if var_dir is not None else None


def load_key(var_dir: Path | None = None, *, create: bool = False) -> bytes | None:
    """The HMAC key (see the module's docstring); created in the key file when ``create``."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode("utf-8")
    path = key_path(var_dir)
    if path is None:
        return None
    if path.exists():
        return path.read_text(encoding="ascii").strip().encode("ascii")
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32))
    log.info("suppression key created (outside the warehouse)")
    return path.read_text(encoding="ascii").strip().encode("ascii")


def fold_name(value: Any) -> str:
    """Upper case, accents removed, anything but letters and digits as one space."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    return " ".join(re.findall(r"[A-Z0-9]+", text))


def norm_phone(value: Any) -> str:
    digits = re.sub(r"\D", "", str(value or ""))
    if str(value or "").strip().startswith("+"):
        return digits
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        return "33" + digits[1:]
    return digits


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10] if value else ""


def identity_keys(record: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, normalised key) pairs of one person record (columns of ``core.person_record``)."""
    keys: set[tuple[str, str]] = set()
    if record.get("record_key"):
        keys.add(("record", str(record["record_key"])))
    given = fold_name(record.get("given_names")).split(" ")[0]
    surnames = {fold_name(record.get(c)) for c in ("usage_name", "birth_name")} - {""}
    if not given or not surnames:
        return keys
    email = str(record.get("email") or "").strip().lower()
    phone = norm_phone(record.get("phone"))
    birth = _iso(record.get("birth_date"))
    for surname in surnames:
        name = f"{surname}|{given}"
        if birth:
            keys.add(("name_birth", f"{name}|{birth}"))
        if email:
            keys.add(("name_email", f"{name}|{email}"))
        if len(phone) >= 6:
            keys.add(("name_phone", f"{name}|{phone}"))
    return keys


def keyed_hash(key: bytes, kind: str, text: str) -> str:
    return hmac.new(key, f"{kind}\x1f{text}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Suppression:
    """The suppression list loaded for one canonical build: which staged rows to set aside."""

    key: bytes
    hashes: frozenset[str]
    dropped_records: set[str] = field(default_factory=set)  # record keys set aside in this build
    dropped: dict[str, int] = field(default_factory=dict)  # canonical table -> rows set aside

    def matches(self, record: Mapping[str, Any]) -> bool:
        return any(keyed_hash(self.key, k, t) in self.hashes for k, t in identity_keys(record))

    def rows(self, table: Table, staged: pa.Table) -> set[int]:
        """Positions of the staged rows of ``table`` to set aside."""
        if not self.hashes or staged.num_rows == 0:
            return set()
        out: set[int] = set()
        if table.name == PERSON_RECORD.name:
            cols = [c for c in ("record_key", "given_names", "usage_name", "birth_name", "birth_date", "email",
                                "phone") if c in staged.column_names]
            for i, r in enumerate(staged.select(cols).to_pylist()):
                if self.matches(r):
                    out.add(i)
                    self.dropped_records.add(r["record_key"])
        elif "record_key" in staged.column_names:
            for i, rk in enumerate(staged.column("record_key").to_pylist()):
                if rk is not None and (rk in self.dropped_records
                                       or keyed_hash(self.key, "record", rk) in self.hashes):
                    out.add(i)
        if out:
            self.dropped[table.name] = self.dropped.get(table.name, 0) + len(out)
            log.info("core.%s: %d row(s) of erased people set aside (suppression list)", table.name, len(out))
        return out


def load(wh: Warehouse, var_dir: Path | None = None) -> Suppression | None:
    """The suppression list with its key, or None when the list is empty; raises
    :class:`SuppressionKeyMissing` when it has entries and the key is nowhere."""
    if not wh.table_exists(SUPPRESSION.schema, SUPPRESSION.name):
        return None
    hashes = frozenset(r[0] for r in wh.rows(f"SELECT key_hash FROM {qualified(SUPPRESSION)}"))
    if not hashes:
        return None
    key = load_key(var_dir)
    if key is None:
        raise SuppressionKeyMissing(
            f"the suppression list has {len(hashes)} entries but its key is not set (${KEY_ENV}, "
            f"${KEY_FILE_ENV} or {key_path(var_dir)}): nothing is loaded, so erased people stay erased")
    return Suppression(key, hashes)


def entries(key: bytes, records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """key_hash -> key_kind for every identity key of ``records``."""
    return {keyed_hash(key, kind, text): kind for r in records for kind, text in identity_keys(r)}
