"""PostHog's funnel UDFs in HogQL: ``aggregate_funnel``, ``aggregate_funnel_array_trends``...

PostHog's insight SQL for funnels (steps, trends, experiments) calls these with each person's
sorted events. Here a call is printed as a call of the engine's Python function
(``engine/_funnels.py``): the arguments are cast to the types PostHog's UDF declares (so what its
ClickHouse would refuse is refused here), passed as one JSON text with the query's start time
(the function's deadline), and its JSON answer is read back as PostHog's result type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import HogQLError
from ._schema import Type
from ._scope import Scope, Value

if TYPE_CHECKING:
    from ._printer import Printer

__all__ = ["ENGINE_FUNCTIONS", "FUNNELS", "funnel"]

# The engine process registers its Python functions under these names (engine/_funnels.py).
ENGINE_FUNCTIONS = {"steps": "posthog_local_funnel_steps", "trends": "posthog_local_funnel_trends"}

# the breakdown's type per UDF family: one string, an array of strings, or a cohort id
_BREAKDOWNS = {"": "Nullable(String)", "_array": "Array(String)", "_cohort": "UInt64"}
_PROP_VALS = {
    "": "Array(Nullable(String))",
    "_array": "Array(Array(String))",
    "_cohort": "Array(UInt64)",
}


@dataclass(frozen=True, slots=True)
class Udf:
    """One of PostHog's funnel UDFs: its engine function, argument and result types."""

    kind: str
    arguments: str
    result: str

    @property
    def arity(self) -> int:
        return 7 if self.kind == "steps" else 8


def _steps(family: str) -> Udf:
    breakdown = _BREAKDOWNS[family]
    return Udf(
        "steps",
        f"Tuple(UInt8, UInt64, String, String, {_PROP_VALS[family]}, Array(Int8), "
        f"Array(Tuple(Nullable(Float64), UUID, {breakdown}, Array(Int8))))",
        f"Array(Tuple(Int8, {breakdown}, Array(Float64), Array(Array(UUID)), UInt32))",
    )


def _trends(family: str) -> Udf:
    breakdown = _BREAKDOWNS[family]
    return Udf(
        "trends",
        f"Tuple(UInt8, UInt8, UInt8, UInt64, String, String, {_PROP_VALS[family]}, "
        f"Array(Tuple(Nullable(Float64), UInt64, UUID, {breakdown}, Array(Int8))))",
        f"Array(Tuple(UInt64, Int8, {breakdown}, UUID))",
    )


FUNNELS: dict[str, Udf] = {}
for _family in _BREAKDOWNS:
    for _suffix in ("", "_json"):  # PostHog keeps JSON-format twins of each UDF
        FUNNELS[f"aggregate_funnel{_family}{_suffix}"] = _steps(_family)
        FUNNELS[f"aggregate_funnel{_family}_trends{_suffix}"] = _trends(_family)


def funnel(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    """Print a call of one of ``FUNNELS``."""
    name = str(node["name"])
    udf = FUNNELS[name]
    if len(args) != udf.arity:
        raise HogQLError.at(
            node, f"Function '{name}' expects {udf.arity} arguments, found {len(args)}"
        )
    out = printer.out
    printed = [printer.expr(a, scope).sql for a in args]
    arguments = out.call("CAST", out.call("tuple", *printed), f"'{udf.arguments}'")
    started = out.call("toUnixTimestamp64Milli", out.call("now64", "3"))
    answer = out.call(ENGINE_FUNCTIONS[udf.kind], out.call("toJSONString", arguments), started)
    return Value(
        out.call("JSONExtract", out.call("assumeNotNull", answer), f"'{udf.result}'"),
        Type("array", False),
    )
