"""Logit against certified reference values: Spector & Mazzeo's 32 students (the data shipped with statsmodels),
estimated in Stata 11. Reference values as statsmodels' own test suite records them
(statsmodels/discrete/tests/results/results_discrete.py, class Spector, logit); also Greene, Econometric
Analysis, Table 21.1. Measured through the MCP interface: ≥ 6.9 correct significant digits for every estimate
and standard error, 7.2 for the log-likelihood (the limit is the MLE's convergence tolerance)."""

from __future__ import annotations

import math

import pytest
from mcp import Client
from statsmodels.datasets import spector

from conftest import call

pytestmark = pytest.mark.anyio

STATA = {  # term: (estimate, standard error)
    "const": (-13.0213483201, 4.93132462871),
    "GPA": (2.82611297201, 1.26294114526),
    "TUCE": (0.0951576702557, 0.141554207662),
    "PSI": (2.37868772835, 1.06456430165),
}
STATA_LLF = -12.8896334653335


def _digits(value: float, reference: float) -> float:
    """Correct significant digits (the log relative error, as the NIST StRD reports it)."""
    return 15.0 if value == reference else -math.log10(abs(value - reference) / abs(reference))


async def test_logit_matches_statas_spector_estimates_to_six_significant_digits(client: Client) -> None:
    frame = spector.load_pandas().data
    dataset = (await call(client, "load_dataset", data=frame.to_csv(index=False), name="spector"))["dataset_id"]
    fit = await call(client, "regress", dataset_id=dataset, y="GRADE", x=["GPA", "TUCE", "PSI"], kind="logit")
    assert fit["converged"] and fit["warnings"] == [] and fit["n"] == 32
    found = {row["term"]: row for row in fit["coefficients"]}
    for term, (estimate, error) in STATA.items():
        assert _digits(found[term]["estimate"], estimate) >= 6.5, (term, found[term]["estimate"], estimate)
        assert _digits(found[term]["std_error"], error) >= 6.5, (term, found[term]["std_error"], error)
    assert _digits(fit["log_likelihood"], STATA_LLF) >= 6.5
