"""Which functions a HogQL query may call: an allow-list in the spirit of PostHog's HogQL mapping.

Anything that reaches outside the database (``file``, ``url``, ``s3``, ``remote``, ``python``,
``executable``, ``dictGet``...), reads server state (``getSetting``, ``hostName``, ``version``) or
stalls the engine (``sleep``) is absent, so it is refused. Aggregate combinators (``countIf``,
``uniqMerge``, ``sumArray``...) are allowed when their base aggregate is.
"""

from __future__ import annotations

__all__ = ["is_allowed_function"]

_ALLOWED = frozenset(
    name.lower()
    for name in """
    count countDistinct sum avg min max any anyLast anyHeavy argMin argMax uniq uniqExact uniqCombined
    uniqHLL12 uniqTheta groupArray groupUniqArray groupArraySample groupBitAnd groupBitOr median
    quantile quantiles quantileExact quantileTiming quantileDeterministic stddevPop stddevSamp
    varPop varSamp covarPop covarSamp corr topK histogram windowFunnel retention sequenceMatch
    sequenceCount simpleLinearRegression sumMap minMap maxMap avgWeighted entropy skewPop kurtPop
    row_number rank dense_rank percent_rank cume_dist ntile lag lead lagInFrame leadInFrame
    first_value last_value nth_value
    if multiIf coalesce ifNull nullIf isNull isNotNull assumeNotNull toNullable greatest least
    and or not xor abs round floor ceil ceiling trunc truncate sqrt cbrt exp log log2 log10 ln pow
    power intDiv intDivOrZero modulo moduloOrZero plus minus multiply divide negate sign pi e
    equals notEquals less greater lessOrEquals greaterOrEquals like ilike notLike notILike
    match extract extractAll extractAllGroups replaceRegexpOne replaceRegexpAll replaceOne
    replaceAll position positionCaseInsensitive locate multiSearchAny countSubstrings
    length lengthUTF8 empty notEmpty lower upper lowerUTF8 upperUTF8 reverse concat concatWithSeparator
    substring substr substringUTF8 mid left right trim trimLeft trimRight trimBoth ltrim rtrim
    leftPad rightPad splitByChar splitByString splitByRegexp arrayStringConcat startsWith endsWith
    format formatReadableSize formatReadableQuantity formatReadableTimeDelta base64Encode base64Decode
    hex unhex toString toStringCutToZero toFixedString toInt toInt8 toInt16 toInt32 toInt64 toUInt8
    toUInt16 toUInt32 toUInt64 toFloat toFloat32 toFloat64 toDecimal toDecimal32 toDecimal64 toBool
    toUUID toUUIDOrNull toIntOrNull toFloatOrNull toInt64OrNull toFloat64OrNull toDateOrNull
    toDateTimeOrNull toInt64OrZero toFloat64OrZero parseDateTimeBestEffort
    parseDateTimeBestEffortOrNull parseDateTime64BestEffort parseDateTime64BestEffortOrNull
    cast accurateCastOrNull toTypeName
    now now64 today yesterday toDate toDate32 toDateTime toDateTime64 toTimeZone toTimezone
    toYear toQuarter toMonth toWeek toISOWeek toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute
    toSecond toUnixTimestamp toUnixTimestamp64Milli toStartOfYear toStartOfQuarter toStartOfMonth
    toStartOfWeek toMonday toStartOfDay toStartOfHour toStartOfMinute toStartOfFiveMinutes
    toStartOfFifteenMinutes toStartOfInterval toYYYYMM toYYYYMMDD toRelativeDayNum
    dateDiff date_diff dateAdd date_add dateSub date_sub dateTrunc date_trunc addSeconds addMinutes
    addHours addDays addWeeks addMonths addYears subtractSeconds subtractMinutes subtractHours
    subtractDays subtractWeeks subtractMonths subtractYears formatDateTime timeSlot age
    toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth
    toIntervalQuarter toIntervalYear fromUnixTimestamp fromUnixTimestamp64Milli
    array arrayJoin arrayMap arrayFilter arrayExists arrayAll arrayFirst arrayLast arraySort
    arrayReverseSort arraySum arrayAvg arrayMin arrayMax arrayCount arrayDistinct arrayUniq
    arrayEnumerate arrayElement arraySlice arrayConcat arrayPushBack arrayPushFront arrayCompact
    arrayZip arrayFlatten arrayReduce arrayIntersect arrayCumSum arrayDifference arrayResize
    has hasAll hasAny indexOf range emptyArrayString emptyArrayInt64 tuple tupleElement untuple
    map mapKeys mapValues mapContains
    JSONExtract JSONExtractString JSONExtractInt JSONExtractFloat JSONExtractBool JSONExtractRaw
    JSONExtractKeys JSONExtractArrayRaw JSONHas JSONLength JSONType JSONAllPaths JSONAllPathsWithTypes
    toJSONString isValidJSON
    domain domainWithoutWWW topLevelDomain protocol path pathFull queryString fragment
    extractURLParameter extractURLParameters cutQueryString cutWWW cutURLParameter
    cityHash64 sipHash64 xxHash64 murmurHash3_64 MD5 SHA256 generateUUIDv4 rand rand64 randCanonical
    isFinite isInfinite isNaN bar transform in notIn globalIn globalNotIn tupleHammingDistance
    greatCircleDistance geoDistance
    currentTimezone
    """.split()
)

_COMBINATORS = ("if", "array", "merge", "state", "ornull", "ordefault", "distinct", "foreach", "resample")


def is_allowed_function(name: str) -> bool:
    """True when ``name`` (as written, any case) is a function HogQL queries may call here."""
    lowered = name.lower()
    if lowered in _ALLOWED:
        return True
    for suffix in _COMBINATORS:  # countIf, uniqMerge, sumArrayIf, ... strip combinators one by one
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return is_allowed_function(lowered[: -len(suffix)])
    return False
