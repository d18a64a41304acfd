"""The govfacts expectations: GX Expectation subclasses named as sentences.

Each class is a real Great Expectations expectation (a subclass of a built-in
column-map expectation), so GX evaluates it, renders it in Data Docs and stores
its result. A class fixes what differs from the built-in: the column it reads by
default, its bounds, its ``severity`` (``critical`` quarantines the fact,
``warning`` publishes it with a flag) and a ``description`` in plain language,
which the report shows next to every result.

Rules that need more than one fact (cross-fact, cross-document, implied growth)
read a ``dq_*`` column that ``expectations.derive`` computes beforehand; the
pass/fail decision itself is always GX's.

``template`` turns one failing fact into the message a person reads in the
quarantine and the report; it is formatted with the fact's columns and the
expectation's own parameters.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Mapping
from typing import ClassVar, Optional, Union

import great_expectations as gx
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metadata_types import FailureSeverity

E = gx.expectations
ERROR = FailureSeverity.CRITICAL
WARNING = FailureSeverity.WARNING


def severity_word(severity: FailureSeverity | str) -> str:
    """govfacts' word for a GX severity: critical -> error (quarantine), anything else -> warning."""
    value = severity.value if isinstance(severity, FailureSeverity) else str(severity)
    return "error" if value == FailureSeverity.CRITICAL.value else "warning"


def _fmt(value: object) -> str:
    """A number as a person writes it (6.6, not 6.6000000001; 1e+12 stays readable)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return str(value)
        return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.4e}"
    return str(value)


_ABSENT = object()  # a field no map has (None is a value: a NULL field)


class _Fields:
    """Format mapping that renders numbers compactly and leaves unknown fields visible.

    Only the fields a template names are rendered (a fact has ≈40 columns; its message reads five).
    ``maps`` are searched in order, the first that has the field wins.
    """

    def __init__(self, *maps: Mapping) -> None:
        self.maps = maps

    def __getitem__(self, key: str) -> str:
        for values in self.maps:
            value = values.get(key, _ABSENT)
            if value is not _ABSENT:
                return _fmt(value)
        return "{" + key + "}"


# expectation id() -> (weak reference, serialized configuration); see Explained.configuration
_CONFIGS: dict[int, tuple[weakref.ref, tuple]] = {}


def _forget(key: int):
    """Weak-reference callback: drop the cached configuration of a collected expectation (only its own entry)."""
    def forget(ref: weakref.ref) -> None:
        hit = _CONFIGS.get(key)
        if hit is not None and hit[0] is ref:
            del _CONFIGS[key]
    return forget


class Explained:
    """Mixin: a message template for one failing fact."""

    template: ClassVar[str] = "{indicator} {measure} {value}{unit} ({period}, {kind}) failed {name}"
    _NOT_KWARGS: ClassVar[frozenset] = frozenset({"id", "meta", "notes", "result_format", "description", "catch_exceptions",
                                                  "rendered_content", "severity", "windows", "batch_id"})

    @property
    def configuration(self) -> ExpectationConfiguration:
        """GX's configuration with this class's defaults written out.

        GX serializes ``exclude_defaults``, which drops exactly what a subclass
        sets by default (its column, bounds, severity and description): a
        stored result would then show no bounds and a ``warning`` would come
        back as ``critical``. Writing them out keeps the stored result, Data
        Docs and any re-built expectation faithful.

        GX asks an expectation for its configuration ≈150 times per validation (a quarter of
        a validation's time went to re-serializing the same pydantic model), so the
        serialized form is kept until a field of the expectation is set again; every call
        still returns a new object, so whoever changes the one it got changes nothing here.
        """
        hit = _CONFIGS.get(id(self))
        if hit is None or hit[0]() is not self:
            hit = (weakref.ref(self, _forget(id(self))), self._configuration_now())
            _CONFIGS[id(self)] = hit
        kind, kwargs, meta, notes, config_id, rendered = hit[1]
        return ExpectationConfiguration(type=kind, kwargs=dict(kwargs), meta=copy.deepcopy(meta), notes=notes,
                                        description=self.description, severity=self.severity, id=config_id,
                                        rendered_content=rendered)

    def _configuration_now(self) -> tuple:
        """(type, kwargs, meta, notes, id, rendered_content) of GX's configuration, defaults written out."""
        config = super().configuration
        for key in self.__fields__:  # getattr, not self.dict()
            if key not in self._NOT_KWARGS and key not in config.kwargs:
                value = getattr(self, key)
                if value is not None:
                    config.kwargs[key] = value
        return config.type, config.kwargs, config.meta, config.notes, config.id, config.rendered_content

    def __setattr__(self, name: str, value: object) -> None:
        _CONFIGS.pop(id(self), None)  # a changed field changes the configuration
        super().__setattr__(name, value)

    def explain(self, fact: Mapping) -> str:
        """The plain-language reason this fact failed the expectation.

        ``fact``: its fields by name; only those the template names are read (a mapping may fetch them on demand).
        """
        params = {k: getattr(self, k, None) for k in ("min_value", "max_value", "value_set", "regex")}
        return self.template.format_map(_Fields({"name": self.expectation_type}, params, fact))


# --- single-fact rules ---------------------------------------------------------------------------

class ExpectGrowthRatesToBeInRange(Explained, E.ExpectColumnValuesToBeNull):
    """Stated growth of an indicator lies in its plausible range (seeds/indicators.csv growth_min/max).

    One expectation checks every indicator's range: ``dq_growth_outside`` holds a growth rate
    outside its indicator's range (NULL inside), so GX's unexpected values are the rates
    themselves. ``applies``: the columns that are set on the facts the rule checks (the report
    counts them per indicator).
    """

    column: str = "dq_growth_outside"
    severity: FailureSeverity = ERROR
    description: str = "Growth rates lie within the plausible range of their indicator"
    template: ClassVar[str] = ("{indicator} growth {value}% ({period}, {kind}) is outside the plausible range "
                               "[{dq_growth_min}, {dq_growth_max}] %")
    applies: ClassVar[tuple[str, ...]] = ("dq_growth_min",)
    shows: ClassVar[str] = "value"  # the fact's field its helper column holds where the rule fails (the report names it)


class ExpectGrowthTargetsToBeInRange(Explained, E.ExpectColumnValuesToBeNull):
    """A growth target lies in its plausible range (seeds/indicators.csv target_growth_min/max), via ``dq_target_growth_outside``."""

    column: str = "dq_target_growth_outside"
    severity: FailureSeverity = ERROR
    description: str = "Growth targets lie within the plausible range of their indicator"
    template: ClassVar[str] = ("{indicator} growth target {value}% ({period}) is outside the plausible range "
                               "[{dq_target_growth_min}, {dq_target_growth_max}] %")
    applies: ClassVar[tuple[str, ...]] = ("dq_target_growth_min",)
    shows: ClassVar[str] = "value"  # the fact's field its helper column holds where the rule fails (the report names it)


class ExpectUnitsToMatchTheIndicatorFamily(Explained, E.ExpectColumnValuesToBeNull):
    """GDP is money, never people: the unit belongs to the indicator's unit family (or is % / 个百分点), via ``dq_unit_outside_family``."""

    column: str = "dq_unit_outside_family"
    severity: FailureSeverity = ERROR
    description: str = "Every fact is stated in a unit of its indicator's family (seeds/indicators.csv unit_families), a % or 个百分点"
    template: ClassVar[str] = "{indicator} {measure} {value} is stated in {unit}, which is not a unit of the indicator's family ({dq_unit_families})"
    applies: ClassVar[tuple[str, ...]] = ("dq_unit_families", "unit")
    shows: ClassVar[str] = "unit"  # the fact's field its helper column holds where the rule fails (the report names it)


class ExpectBaseUnitsToMatchTheUnitTable(Explained, E.ExpectColumnValuesToBeInSet):
    """unit_base is the base unit seeds/units.csv gives for the unit as written."""

    column: str = "dq_unit_pair"
    severity: FailureSeverity = ERROR
    description: str = "The base unit of every fact is the one seeds/units.csv gives for its unit"
    template: ClassVar[str] = "{indicator} {value}{unit} has base unit {unit_base}, but seeds/units.csv gives {dq_expected_unit_base} for {unit}"


class ExpectBaseValuesToEqualValueTimesUnitFactor(Explained, E.ExpectColumnValuesToBeBetween):
    """value_base == value x factor of the unit (relative error at most 1e-9)."""

    column: str = "dq_base_error"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 1e-9
    severity: FailureSeverity = ERROR
    description: str = "value_base equals value × the unit's factor from seeds/units.csv"
    template: ClassVar[str] = "{indicator} {value}{unit}: value_base {value_base} should be {dq_expected_value_base} (value × factor of {unit})"


class ExpectLevelsToBePositive(Explained, E.ExpectColumnValuesToBeBetween):
    """A level (an amount, a count, an area) is above zero; a zero or negative level is a misread."""

    column: str = "value"
    min_value: Optional[Union[float, int]] = 0
    strict_min: bool = True
    severity: FailureSeverity = ERROR
    description: str = "Levels (amounts, counts, areas) are above zero"
    template: ClassVar[str] = "{indicator} level {value}{unit} ({period}, {kind}) is not above zero"


class ExpectSharesToBePercentages(Explained, E.ExpectColumnValuesToBeBetween):
    """A share, or any level stated in % (an urbanization rate), lies in [0, 100]."""

    column: str = "value"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 100
    severity: FailureSeverity = ERROR
    description: str = "Shares and rates stated in % lie within [0, 100]"
    template: ClassVar[str] = "{indicator} {measure} {value}% ({period}) is not a share within [0, 100]"


class ExpectThreeSectorStructuresToSumToOneHundred(Explained, E.ExpectColumnValuesToBeBetween):
    """Primary : secondary : tertiary shares of GDP add up to 100 (± 0.5 for rounding)."""

    column: str = "dq_sector_sum"
    min_value: Optional[Union[float, int]] = 99.5
    max_value: Optional[Union[float, int]] = 100.5
    severity: FailureSeverity = ERROR
    description: str = "The three-sector structure a:b:c sums to 100 ± 0.5"
    template: ClassVar[str] = "three-sector structure {dq_sector_ratio} ({period}) sums to {dq_sector_sum}, not 100 ± 0.5"


class ExpectThreeSectorStructuresToHaveThreeTerms(Explained, E.ExpectColumnValuesToBeBetween):
    """The evidence of a structure fact holds the full a:b:c ratio, so it can be checked."""

    column: str = "dq_sector_terms"
    min_value: Optional[Union[float, int]] = 3
    max_value: Optional[Union[float, int]] = 3
    severity: FailureSeverity = WARNING
    description: str = "The evidence of a three-sector structure holds all three terms a:b:c"
    template: ClassVar[str] = "three-sector structure {value} ({period}): the evidence does not hold a full a:b:c ratio"


class ExpectPeriodsToBeYearsOrSpans(Explained, E.ExpectColumnValuesToMatchRegex):
    """period is a year (2023) or a span of years (2017-2021)."""

    column: str = "period"
    regex: str = r"^(?:19|20)\d\d(?:-(?:19|20)\d\d)?$"
    severity: FailureSeverity = ERROR
    description: str = "Periods are a year such as 2023 or a span such as 2017-2021"
    template: ClassVar[str] = "{indicator} {value}{unit}: period {period!s} is neither a year nor a span of years"


class ExpectMeasuresToBeKnown(Explained, E.ExpectColumnValuesToBeInSet):
    """measure is one of level, growth, share, ratio."""

    column: str = "measure"
    severity: FailureSeverity = ERROR
    description: str = "Every fact's measure is level, growth, share or ratio"
    template: ClassVar[str] = "{indicator} {value}{unit}: measure {measure} is not one of {value_set}"


class ExpectKindsToBeKnown(Explained, E.ExpectColumnValuesToBeInSet):
    """kind is one of actual, target, average_annual, cumulative, change_vs_base."""

    column: str = "kind"
    severity: FailureSeverity = ERROR
    description: str = "Every fact's kind is actual, target, average_annual, cumulative or change_vs_base"
    template: ClassVar[str] = "{indicator} {value}{unit}: kind {kind} is not one of {value_set}"


class ExpectFactIdsToBeUnique(Explained, E.ExpectColumnValuesToBeUnique):
    """The extractor does not emit the same fact twice."""

    column: str = "fact_id"
    severity: FailureSeverity = WARNING
    description: str = "No fact is extracted twice from the same place of a document"
    template: ClassVar[str] = "{indicator} {value}{unit} ({period}, {kind}) was extracted more than once from the same evidence"


class ExpectEvidenceToContainTheValue(Explained, E.ExpectColumnValuesToBeInSet):
    """The number of the fact is written in its evidence (catches numbers read from the wrong clause)."""

    column: str = "dq_value_in_evidence"
    value_set: list = ["yes"]
    severity: FailureSeverity = WARNING
    description: str = "The fact's number is written in its evidence sentence"
    template: ClassVar[str] = "{indicator} {value}{unit}: the number {value} does not appear in the evidence"


class ExpectEvidenceToMatchTheDocumentText(Explained, E.ExpectColumnValuesToBeInSet):
    """text[start:end] of the normalized document is exactly the evidence, so every fact can be traced."""

    column: str = "dq_evidence_in_text"
    value_set: list = ["yes"]
    severity: FailureSeverity = ERROR
    description: str = "The evidence is exactly the document text at the fact's start/end offsets"
    template: ClassVar[str] = "{indicator} {value}{unit}: the document text at [{start}, {end}) is not the evidence"


# --- rules across facts --------------------------------------------------------------------------

class ExpectTargetPeriodsToEqualTheReportYear(Explained, E.ExpectColumnValuesToBeBetween):
    """An annual target is for the year of the report; other years are usually multi-year plan goals."""

    column: str = "dq_target_year_gap"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 0
    severity: FailureSeverity = WARNING
    description: str = ("A target is for the year of the report it comes from (a target for another year is usually "
                        "a multi-year plan goal: published, flagged)")
    template: ClassVar[str] = "{indicator} {measure} target {value}{unit} is for {period}, not the report year {report_year}"


class ExpectUrbanIncomeToExceedRuralIncome(Explained, E.ExpectColumnValuesToBeBetween):
    """Urban per-capita disposable income is above rural in every Chinese region; the reverse is a swap."""

    column: str = "dq_rural_to_urban"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 1
    strict_max: bool = True
    severity: FailureSeverity = ERROR
    description: str = "Urban per-capita disposable income is above rural income (same region and year)"
    template: ClassVar[str] = ("{indicator} {value}{unit} ({region}, {period}): rural income is {dq_rural_to_urban} × urban "
                               "income, it should be below 1")


class ExpectGdpToExceedGeneralBudgetRevenue(Explained, E.ExpectColumnValuesToBeBetween):
    """Local general budget revenue is a small fraction of GDP (typically 3-15 %)."""

    column: str = "dq_revenue_to_gdp"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 1
    strict_max: bool = True
    severity: FailureSeverity = ERROR
    description: str = "GDP is above general public budget revenue (same region and year)"
    template: ClassVar[str] = ("{indicator} {value}{unit} ({region}, {period}): general budget revenue is {dq_revenue_to_gdp} × GDP, "
                               "it should be below 1")


class ExpectGdpToExceedIndustrialValueAdded(Explained, E.ExpectColumnValuesToBeBetween):
    """Industrial value added is a part of GDP."""

    column: str = "dq_industry_to_gdp"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 1
    strict_max: bool = True
    severity: FailureSeverity = ERROR
    description: str = "GDP is above industrial value added (same region and year)"
    template: ClassVar[str] = ("{indicator} {value}{unit} ({region}, {period}): industrial value added is {dq_industry_to_gdp} × GDP, "
                               "it should be below 1")


class ExpectGdpToExceedAThirdOfRetailSales(Explained, E.ExpectColumnValuesToBeBetween):
    """Retail sales are a gross turnover, not value added, and exceed GDP in commercial districts;
    they are not three times GDP anywhere, so only a scale error (万元 read as 亿元) trips this."""

    column: str = "dq_retail_to_gdp"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 3
    strict_max: bool = True
    severity: FailureSeverity = ERROR
    description: str = ("GDP is above a third of retail sales (same region and year): retail sales can exceed GDP in "
                        "commercial districts, but not threefold")
    template: ClassVar[str] = ("{indicator} {value}{unit} ({region}, {period}): retail sales are {dq_retail_to_gdp} × GDP, "
                               "they should be below 3")


class ExpectOneDocumentToStateOneValuePerKey(Explained, E.ExpectColumnValuesToBeBetween):
    """A document states one value per region, indicator, measure, kind and period (to the precision written)."""

    column: str = "dq_document_conflicts"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 0
    severity: FailureSeverity = WARNING
    description: str = ("One document states one value per region, indicator, measure, kind and period: two that do not "
                        "agree (a GDP beside a GDP per km² read as GDP) mean one of them was misread")
    template: ClassVar[str] = ("{indicator} {measure} {value}{unit} ({region}, {period}, {kind}) disagrees with the same "
                               "document's {dq_document_conflict_with}")


class ExpectFactsToAgreeAcrossDocuments(Explained, E.ExpectColumnValuesToBeBetween):
    """Two documents stating the same region, indicator, period, kind and measure give the same value."""

    column: str = "dq_conflicts"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 0
    severity: FailureSeverity = WARNING
    description: str = ("Documents agree: the same region, indicator, period, kind and measure has one value "
                        "(to the precision written; 以上/超/近/约 read as bounds)")
    template: ClassVar[str] = ("{indicator} {measure} {value}{unit} ({region}, {period}, {kind}) disagrees with "
                               "{dq_conflict_with}")


class ExpectStatedGrowthToMatchImpliedGrowth(Explained, E.ExpectColumnValuesToBeBetween):
    """Levels of consecutive years imply a growth rate; the stated one is often real (constant prices),
    the implied one nominal, so only a gap above 5 percentage points is worth a look."""

    column: str = "dq_growth_gap"
    min_value: Optional[Union[float, int]] = 0
    max_value: Optional[Union[float, int]] = 5
    severity: FailureSeverity = WARNING
    description: str = ("Stated growth is within 5 percentage points of the growth implied by the levels of consecutive "
                        "years (stated growth is often real, implied growth nominal)")
    template: ClassVar[str] = ("{indicator} ({region}, {period}): stated growth {dq_stated_growth}% vs {dq_implied_growth}% implied "
                               "by the levels {dq_growth_levels}, a gap of {dq_growth_gap} points")


ALL_EXPECTATIONS: tuple[type, ...] = (
    ExpectGrowthRatesToBeInRange, ExpectGrowthTargetsToBeInRange, ExpectUnitsToMatchTheIndicatorFamily,
    ExpectBaseUnitsToMatchTheUnitTable, ExpectBaseValuesToEqualValueTimesUnitFactor, ExpectLevelsToBePositive,
    ExpectSharesToBePercentages, ExpectThreeSectorStructuresToSumToOneHundred, ExpectThreeSectorStructuresToHaveThreeTerms,
    ExpectPeriodsToBeYearsOrSpans, ExpectMeasuresToBeKnown, ExpectKindsToBeKnown, ExpectFactIdsToBeUnique,
    ExpectEvidenceToContainTheValue, ExpectEvidenceToMatchTheDocumentText, ExpectTargetPeriodsToEqualTheReportYear,
    ExpectUrbanIncomeToExceedRuralIncome, ExpectGdpToExceedGeneralBudgetRevenue, ExpectGdpToExceedIndustrialValueAdded,
    ExpectGdpToExceedAThirdOfRetailSales, ExpectOneDocumentToStateOneValuePerKey, ExpectFactsToAgreeAcrossDocuments,
    ExpectStatedGrowthToMatchImpliedGrowth,
)
