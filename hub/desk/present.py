"""How the desk's pages say things: the Jinja2 environment and French formats (dates, money,
proof levels, labels of silos, kinds and statuses, a link's explanation).

Nothing here decides what an agent may see: the templates get what :mod:`hub.desk.api` returned,
already cut to the agent's purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jinja2
from starlette.templating import Jinja2Templates

from schemas.contract import CERTIFICATION_LEVELS
from warehouse.access_export import COMPARISONS_FR, ROLE_LABELS, SYSTEM_LABELS

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.suffix in (".css", ".js"))

# RGAA: "non conforme" while no audit in force measures the criteria (the rule of the RGAA's
# declaration model); change it with the audit's result and date.
ACCESSIBILITY = {
    "state": "non conforme",
    "reason": ("Aucun audit de conformité RGAA n'a encore été réalisé : en l'absence de résultat d'audit en cours "
               "de validité, le référentiel impose de déclarer le service non conforme, même si les vérifications "
               "ci-dessous sont passées. Un audit sur un échantillon de pages est à mener avant la mise en service."),
    "updated": "2026-12-07",
    "axe": "4.14",
    "pages": ["recherche", "résultats", "motif de consultation", "fiche usager (à 1280 et 1024 pixels)",
              "signalement d'une fusion erronée", "qui a consulté (DPO)", "déclaration d'accessibilité",
              "page d'erreur (accès refusé)"],
}

SEX_LABELS = {"F": "féminin", "M": "masculin"}
KIND_LABELS = {"demande": "demande", "facture": "facture", "paiement": "paiement", "inscription": "inscription",
               "subvention": "subvention", "ticket": "ticket de support", "rendez-vous": "rendez-vous"}
STATUS_LABELS = {
    "emise": "émise, non payée", "impayee": "impayée", "impayée": "impayée", "unpaid": "impayée", "payee": "payée",
    "payée": "payée", "paid": "payée", "new": "nouvelle", "open": "ouverte", "in_progress": "en cours",
    "closed": "close", "resolved": "résolue", "canceled": "annulée", "cancelled": "annulée", "accepte": "acceptée",
    "refuse": "refusée", "en_cours": "en cours", "en_instruction": "en instruction", "deposee": "déposée",
    "sans_suite": "classée sans suite", "active": "active", "terminee": "terminée",
}
RULE_LABELS = {"certification": "meilleur niveau de preuve", "source_priority": "service de référence",
               "recency": "valeur la plus récente", "frequency": "valeur la plus fréquente",
               "tie_break": "départage à égalité", "fallback": "déduite d'une autre donnée",
               "unanimous": "toutes les fiches concordent"}
CERTIFICATION_FR = {"declaratif": "déclaratif", "justificatif": "justificatif vérifié par un agent",
                    "franceconnect": "FranceConnect"}
CHANNEL_LABELS = {"desk": "bureau des agents", "api": "API", "cli": "ligne de commande",
                  "gdpr-export": "export RGPD"}
OPERATION_LABELS = {"read": "lecture", "create": "création", "update": "modification", "delete": "suppression",
                    "export": "export"}


# ------------------------------------------------------------------------------------------ formats
def fr_date(value: Any) -> str:
    """A date or timestamp as dd/mm/yyyy; empty for none."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    try:
        return date.fromisoformat(str(value)[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def fr_datetime(value: Any) -> str:
    """A timestamp as dd/mm/yyyy à HH:MM (UTC when it says so)."""
    when = _as_datetime(value)
    if when is None:
        return fr_date(value)
    return when.strftime("%d/%m/%Y à %H:%M") + (" UTC" if when.utcoffset() == UTC.utcoffset(None) else "")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and len(value) > 10:
        try:
            return _as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return _as_datetime(date.fromisoformat(value))
        except ValueError:
            return None
    return None


def money(amount: Any, currency: Any = "EUR") -> str:
    """1 500,00 € (narrow no-break space between thousands, decimal comma); a dash for none."""
    if amount in (None, ""):
        return "—"
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return f"{amount} {currency or ''}".strip()
    digits = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    unit = {"EUR": "€"}.get(str(currency or "EUR"), str(currency or ""))
    return f"{digits}\u00a0{unit}" if unit else digits


def nombre(value: Any) -> str:
    """An integer with French thousands (1 234)."""
    try:
        return f"{int(value):,}".replace(",", "\u202f")
    except (TypeError, ValueError):
        return str(value)


def percent(value: Any) -> str:
    """A probability as 98,7 %."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.1f}".replace(".", ",") + "\u00a0%"


def certification(level: Any) -> str:
    """A proof level (0, 1, 2 or its name) in French."""
    name = CERTIFICATION_LEVELS.get(level, level) if isinstance(level, int) else level
    return CERTIFICATION_FR.get(str(name), "inconnu") if name is not None else "inconnu"


def _days(value: Any, now: datetime) -> int | None:
    when = _as_datetime(value)
    return None if when is None else (when.date() - now.date()).days


def days_until(value: Any, now: datetime | None = None) -> str:
    """'dans 3 jours', 'demain', "aujourd'hui" for a deadline."""
    n = _days(value, now or datetime.now(UTC))
    if n is None:
        return ""
    if n <= 0:
        return "aujourd'hui"
    return "demain" if n == 1 else f"dans {n} jours"


def days_since(value: Any, now: datetime | None = None) -> str:
    """'3 jours', '1 jour' since a passed deadline ('aujourd'hui' on the day)."""
    n = _days(value, now or datetime.now(UTC))
    if n is None:
        return ""
    late = -n
    if late <= 0:
        return "aujourd'hui"
    return "1 jour" if late == 1 else f"{nombre(late)} jours"


def full_name(person: Any) -> str:
    """Prénoms and usage name (birth name when no usage name) of a view's person, hit or record."""
    get = person.get if isinstance(person, Mapping) else (lambda k: getattr(person, k, None))
    name = get("usage_name") or get("birth_name")
    return " ".join(str(x) for x in (get("given_names"), name) if x)


def explanation(record: Any) -> str:
    """A link's explanation (``SourceRecord``) in French: what agreed and what differed, in bits."""
    data = record.explanation
    if not data:
        return "fiche seule : rien à rapprocher" if record.match_probability in (1, 1.0) else "—"
    if "decision" in data:
        return f"décision d'un agent ({data['decision']})"
    agree = [(k, v) for k, v in data.items() if isinstance(v, int | float) and v > 0]
    differ = [(k, v) for k, v in data.items() if isinstance(v, int | float) and v < 0]

    def said(items: list[tuple[str, float]]) -> str:
        return ", ".join(f"{COMPARISONS_FR.get(k, k)} ({v:+.1f})".replace(".", ",")
                         for k, v in sorted(items, key=lambda kv: -abs(kv[1])))
    parts = ([f"concordent : {said(agree)}"] if agree else []) + ([f"diffèrent : {said(differ)}"] if differ else [])
    via = record.linked_via
    return " ; ".join(parts) + (f" (rapprochée de {via})" if via else "") if parts else "—"


def sentence(text: Any) -> str:
    """The first letter in capitals, the rest as written (``capitalize`` would lower "RGPD")."""
    text = str(text or "")
    return text[:1].upper() + text[1:]


def attribute_value(attribute: str, value: Any) -> str:
    """A golden or silo value as the page shows it (a birth date as dd/mm/yyyy, the sex in words)."""
    if value in (None, ""):
        return ""
    if attribute == "birth_date":
        return fr_date(value)
    if attribute == "sex":
        return SEX_LABELS.get(str(value), str(value))
    return str(value)


# ------------------------------------------------------------------------------------------ environment
def _static_url(name: str) -> str:
    # the file's hash in the URL: a new stylesheet is never served from an old cache
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]
    return f"/static/{name}?v={digest}"


def templates() -> Jinja2Templates:
    """The pages' templates: autoescaped (every value from a silo or a request is text, never HTML)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        fr_date=fr_date, fr_datetime=fr_datetime, money=money, nombre=nombre, percent=percent,
        certification=certification, days_until=days_until, days_since=days_since, full_name=full_name,
        explanation=explanation, sentence=sentence, shown_as=lambda value, attribute: attribute_value(attribute, value),
        system=lambda s: SYSTEM_LABELS.get(s or "", s or "—"),
        kind=lambda k: KIND_LABELS.get(k or "", k or "—"),
        status=lambda s: STATUS_LABELS.get((s or "").lower(), s or "—"),
        role=lambda r: ROLE_LABELS.get(r or "", r or "—"),
        rule=lambda r: RULE_LABELS.get(r or "", r or ""),
        channel=lambda c: CHANNEL_LABELS.get(c or "", c or "—"),
        operation=lambda o: OPERATION_LABELS.get(o or "", o or ""),
        fields=lambda f: ", ".join(f or []),
    )
    env.globals.update(static=_static_url, accessibility_state=ACCESSIBILITY["state"])
    return Jinja2Templates(env=env)
