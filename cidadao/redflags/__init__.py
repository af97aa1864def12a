"""Red-flag rules over contracts: pure, vectorised (Arrow/numpy), one module per rule, and a registry.

``sweep_table`` runs every rule in this process; ``pipelines`` runs the same passes on Ray.
"""

from cidadao.redflags.base import SideData
from cidadao.redflags.frame import ANALYSIS_SCHEMA, Frame
from cidadao.redflags.registry import AGENCY_RULES, CONTRACT_RULES, FLAGS
from cidadao.redflags.sweep import AgencyFlag, ContractFlag, SweepResult, sweep_table

__all__ = [
    "AGENCY_RULES",
    "ANALYSIS_SCHEMA",
    "CONTRACT_RULES",
    "FLAGS",
    "AgencyFlag",
    "ContractFlag",
    "Frame",
    "SideData",
    "SweepResult",
    "sweep_table",
]
