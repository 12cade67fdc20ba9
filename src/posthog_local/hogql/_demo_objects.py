"""The demo project's cohorts and actions, as ``IN COHORT`` and ``matchesAction`` see them.

One definition serves the ``system.cohorts`` / ``system.actions`` rows (``seed_sql``) and the
compiler, so a cohort's row and its membership cannot disagree. Dynamic cohorts are PostHog
property filters over persons; the static one is a fixed list (the 25 earliest identified
persons). Actions are lists of steps, as PostHog stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import HogQLError
from ._filters import and_, compare, const, field, or_, property_expr

__all__ = ["ACTIONS", "COHORTS", "LANGUAGES", "Action", "Cohort", "find_action", "find_cohort"]

Node = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cohort:
    id: int
    name: str
    description: str
    days_ago: int
    filters: dict[str, Any] | None  # None: a static cohort
    static_size: int = 0

    def members(self) -> Node:
        """``SELECT id FROM persons WHERE ...``: the persons in the cohort."""
        query: Node = {
            "node": "SelectQuery",
            "select": [field("id")],
            "select_from": {"node": "JoinExpr", "table": field("persons")},
        }
        if self.filters is None:
            query["where"] = field("is_identified")
            query["order_by"] = [
                {"node": "OrderExpr", "expr": field("created_at"), "order": "ASC"},
                {"node": "OrderExpr", "expr": field("id"), "order": "ASC"},
            ]
            query["limit"] = const(self.static_size)
        else:
            query["where"] = property_expr(self.filters["properties"], scope="person")
        return query


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    name: str
    description: str
    days_ago: int
    steps: list[dict[str, Any]]

    def condition(self) -> Node:
        """The events that match: any step, each step all of its conditions."""
        return or_(*(_step(step) for step in self.steps)) if self.steps else const(True)


def _step(step: dict[str, Any]) -> Node:
    parts: list[Node] = []
    if step.get("event"):
        parts.append(compare("==", field("event"), const(step["event"])))
    url = step.get("url")
    if url:
        current = field("properties", "$current_url")
        matching = step.get("url_matching") or "contains"
        if matching == "exact":
            parts.append(compare("==", current, const(url)))
        elif matching == "regex":
            parts.append(compare("=~", current, const(url)))
        else:
            parts.append(compare("like", current, const(f"%{url}%")))
    for prop in step.get("properties") or []:
        parts.append(property_expr(prop))
    return and_(*parts)


COHORTS = (
    Cohort(
        1,
        "Paying customers",
        "Persons whose plan is not free",
        80,
        {
            "properties": {
                "type": "AND",
                "values": [
                    {"key": "plan", "type": "person", "operator": "is_set"},
                    {"key": "plan", "type": "person", "value": ["free"], "operator": "is_not"},
                ],
            }
        },
    ),
    Cohort(
        2,
        "Anonymous visitors",
        "Persons who never identified",
        50,
        {
            "properties": {
                "type": "AND",
                "values": [{"key": "email", "type": "person", "operator": "is_not_set"}],
            }
        },
    ),
    Cohort(3, "Beta testers", "Hand-picked early adopters", 20, None, static_size=25),
)

ACTIONS = (
    Action(1, "Signed up", "A new account was created", 90, [{"event": "signed_up"}]),
    Action(
        2,
        "Viewed pricing",
        "Pageview of the pricing page",
        60,
        [{"event": "$pageview", "url": "/pricing", "url_matching": "contains"}],
    ),
    Action(3, "Started subscription", "Paid for a plan", 45, [{"event": "subscription_started"}]),
)


def _find(kind: str, items: tuple[Any, ...], value: Any, node: Node) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise HogQLError.at(node, f"{kind}() takes exactly one string or integer argument")
    if isinstance(value, int | float):
        for item in items:
            if item.id == int(value):
                return item
        missing = {
            "cohort": "Could not find cohort with ID {}",
            "action": "Could not find an action with the ID {}",
        }[kind]
        raise HogQLError.at(node, missing.format(int(value)))
    found = [item for item in items if item.name == value]
    if len(found) > 1:
        raise HogQLError.at(node, f"Found multiple {kind}s with name '{value}'")
    if not found:
        article = "an" if kind == "action" else "a"
        raise HogQLError.at(node, f"Could not find {article} {kind} with the name '{value}'")
    return found[0]


def find_cohort(value: Any, node: Node) -> Cohort:
    """The cohort with this id or name, with PostHog's errors."""
    cohort: Cohort = _find("cohort", COHORTS, value, node)
    return cohort


def find_action(value: Any, node: Node) -> Action:
    """The action with this id or name, with PostHog's errors."""
    action: Action = _find("action", ACTIONS, value, node)
    return action


#: ISO 639-1 codes and English names for ``languageCodeToName`` (the most spoken languages).
LANGUAGES = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "ga": "Irish",
    "gl": "Galician",
    "gu": "Gujarati",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "hy": "Armenian",
    "id": "Indonesian",
    "is": "Icelandic",
    "it": "Italian",
    "ja": "Japanese",
    "ka": "Georgian",
    "kk": "Kazakh",
    "km": "Khmer",
    "kn": "Kannada",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "mk": "Macedonian",
    "ml": "Malayalam",
    "mn": "Mongolian",
    "mr": "Marathi",
    "ms": "Malay",
    "mt": "Maltese",
    "my": "Burmese",
    "ne": "Nepali",
    "nl": "Dutch",
    "no": "Norwegian",
    "pa": "Punjabi",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "si": "Sinhala",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sq": "Albanian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "uz": "Uzbek",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "zu": "Zulu",
}
