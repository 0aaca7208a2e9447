"""Measured accuracy of `regress` on the NIST StRD linear least-squares problems (README "Accuracy").

Prints, per data set, the fewest correct significant digits over the coefficients and over the standard errors
(-log10 of the relative error against the certified values; 'exact' when equal), and the residual SD's digits.
Run: .venv/bin/python bench/accuracy.py (from this package's folder).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
from statsmodels.datasets import longley

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import nist_lls as nist  # noqa: E402
from data_analysis_server.regression import regress, regress_formula  # noqa: E402
from test_correctness_nist import LONGLEY_CERTIFIED  # noqa: E402


def digits(value: float, certified: float) -> float:
    if certified == 0:
        return math.inf if abs(value) < 1e-9 else 0.0
    return math.inf if value == certified else -math.log10(abs(value - certified) / abs(certified))


def row(name: str, out: dict, estimates: list[float], sds: list[float], rsd: float) -> str:
    coefs = out["coefficients"]
    est = min(digits(c["estimate"], e) for c, e in zip(coefs, estimates, strict=True))
    se = min((digits(c["std_error"], s) for c, s in zip(coefs, sds, strict=True) if s), default=math.inf)
    res = digits(out["residual_std_error"], rsd) if rsd else math.inf
    fmt = lambda d: "exact" if d == math.inf else f"{d:.1f}"  # noqa: E731
    codes = ",".join(w["code"] for w in out["warnings"]) or "-"
    return f"| {name} | {out['condition_number']:.2g} | {fmt(est)} | {fmt(se)} | {fmt(res)} | {codes} |"


def main() -> None:
    print("| data set | scaled condition | estimates (digits) | std. errors (digits) | residual SD | warnings |")
    print("|---|---:|---:|---:|---:|---|")
    filip = regress_formula(pd.DataFrame({"y": nist.FILIP_Y, "x": nist.FILIP_X}), "y ~ poly(x, 10, raw=True)")
    certified = nist.FILIP_CERTIFIED
    print(row("Filip", filip, [c[0] for c in certified], [c[1] for c in certified], nist.FILIP_RESIDUAL_SD))
    data = longley.load_pandas().data
    out = regress(data, "TOTEMP", ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"])
    cert = list(LONGLEY_CERTIFIED.values())
    print(row("Longley", out, [c[0] for c in cert], [c[1] for c in cert], 304.854073561965))
    for name in sorted(nist.WAMPLER_Y):
        frame = pd.DataFrame({"y": nist.WAMPLER_Y[name], "x": nist.WAMPLER_X})
        out = regress_formula(frame, "y ~ x + I(x**2) + I(x**3) + I(x**4) + I(x**5)")
        print(row(name, out, nist.WAMPLER_ESTIMATES[name], nist.WAMPLER_SDS[name], nist.WAMPLER_RESIDUAL_SD[name]))


if __name__ == "__main__":
    main()
