"""Multiple regression (OLS and logistic) with a full coefficient table and residual diagnostics.

Contract: `regress` builds the design matrix from named columns only — numeric columns as they are,
categorical ones one-hot encoded with the first level as reference — so no formula string is ever
evaluated (patsy formulas can run arbitrary Python). statsmodels is the reference implementation;
OLS is solved by QR rather than the normal equations, which keeps the NIST Longley certified values
to ≥ 9 significant digits. Rows with a missing value in any used column are dropped and counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.stats.stattools import durbin_watson, jarque_bera
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from . import formula
from .columns import require
from .errors import ColumnError, InvalidArgumentError
from .tables import jsonable

KINDS = ("ols", "logit")
MAX_DUMMIES = 50


def _design(frame: pd.DataFrame, x: list[str], intercept: bool) -> pd.DataFrame:
    parts: list[pd.DataFrame] = []
    for name in x:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            parts.append(col.astype("float64").to_frame(name))
            continue
        levels = col.nunique(dropna=True)
        if levels > MAX_DUMMIES:
            raise ColumnError(
                f"Column {name!r} is categorical with {levels} levels (max {MAX_DUMMIES}); cast or bin it first."
            )
        dummies = pd.get_dummies(col, prefix=name, prefix_sep="=", drop_first=True, dtype="float64")
        parts.append(dummies.where(col.notna(), np.nan, axis=0))
    design = pd.concat(parts, axis=1)
    return sm.add_constant(design, has_constant="add") if intercept else design


def _response(frame: pd.DataFrame, y: str, kind: str) -> tuple[pd.Series, str | None]:
    col = frame[y]
    if kind == "ols":
        if not pd.api.types.is_numeric_dtype(col):
            raise ColumnError(
                f"OLS needs a numeric y; {y!r} has dtype {col.dtype}. Use kind='logit' for a binary outcome."
            )
        return col.astype("float64"), None
    levels = sorted(col.dropna().unique().tolist(), key=str)
    if len(levels) != 2:
        raise ColumnError(f"Logit needs a y with exactly two values; {y!r} has {len(levels)}: {levels[:10]}")
    positive = levels[1]
    return (col == positive).astype("float64").where(col.notna()), str(positive)


def _coef_table(fit: Any, confidence: float, stat_name: str) -> list[dict[str, Any]]:
    ci = np.asarray(fit.conf_int(alpha=1 - confidence))
    return [
        {
            "term": str(term),
            "estimate": float(fit.params.iloc[i]),
            "std_error": float(fit.bse.iloc[i]),
            stat_name: float(fit.tvalues.iloc[i]),
            "p_value": float(fit.pvalues.iloc[i]),
            "ci_low": float(ci[i, 0]),
            "ci_high": float(ci[i, 1]),
        }
        for i, term in enumerate(fit.params.index)
    ]


def _vif(design: pd.DataFrame) -> dict[str, float] | None:
    cols = [c for c in design.columns if c != "const"]
    if len(cols) < 2 or "const" not in design.columns:
        return None
    values = design.to_numpy()
    return {str(c): float(variance_inflation_factor(values, design.columns.get_loc(c))) for c in cols}


def _ols(yv: pd.Series, design: pd.DataFrame, robust: bool, confidence: float) -> dict[str, Any]:
    model = sm.OLS(yv, design)
    fit = model.fit(method="qr", cov_type="HC3") if robust else model.fit(method="qr")
    diagnostics: dict[str, Any] = {"durbin_watson": float(durbin_watson(fit.resid))}
    jb, jb_p, skew, kurt = jarque_bera(fit.resid)
    diagnostics["jarque_bera"] = {"statistic": jb, "p_value": jb_p, "skew": skew, "kurtosis": kurt}
    if "const" in design.columns and design.shape[1] > 1:
        lm, lm_p, _, _ = het_breuschpagan(fit.resid, design)
        diagnostics["breusch_pagan"] = {"statistic": lm, "p_value": lm_p}
    diagnostics["vif"] = _vif(design)
    diagnostics["condition_number"] = float(fit.condition_number)
    return {
        "coefficients": _coef_table(fit, confidence, "t"),
        "r_squared": fit.rsquared,
        "adj_r_squared": fit.rsquared_adj,
        "f_statistic": fit.fvalue,
        "f_p_value": fit.f_pvalue,
        "df_model": fit.df_model,
        "df_resid": fit.df_resid,
        "aic": fit.aic,
        "bic": fit.bic,
        "residual_std_error": float(np.sqrt(fit.scale)),
        "diagnostics": diagnostics,
        "covariance": "HC3 (heteroskedasticity-robust)" if robust else "nonrobust",
    }


def _logit(yv: pd.Series, design: pd.DataFrame, robust: bool, confidence: float) -> dict[str, Any]:
    try:
        fit = sm.Logit(yv, design).fit(disp=0, maxiter=200, cov_type="HC0" if robust else "nonrobust")
    except (PerfectSeparationError, np.linalg.LinAlgError) as exc:
        raise InvalidArgumentError(
            f"Logit failed: {type(exc).__name__} (perfect separation or collinear predictors); drop or combine "
            "predictors."
        ) from None
    table = _coef_table(fit, confidence, "z")
    for row in table:
        row["odds_ratio"] = float(np.exp(row["estimate"]))
    return {
        "coefficients": table,
        "pseudo_r_squared": fit.prsquared,
        "llr": fit.llr,
        "llr_p_value": fit.llr_pvalue,
        "log_likelihood": fit.llf,
        "aic": fit.aic,
        "bic": fit.bic,
        "converged": bool(fit.mle_retvals.get("converged", True)),
        "covariance": "HC0 (robust)" if robust else "nonrobust",
    }


def regress(
    frame: pd.DataFrame,
    y: str,
    x: list[str],
    kind: str = "ols",
    robust: bool = False,
    intercept: bool = True,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Fit y ~ x and return the coefficient table, fit statistics and diagnostics.

    Raises:
        ColumnError: unknown columns, non-numeric y for OLS, non-binary y for logit.
        InvalidArgumentError: unknown kind, no predictors, too few rows, logit separation.
    """
    if kind not in KINDS:
        raise InvalidArgumentError(f"Unknown kind {kind!r}; use one of {list(KINDS)}")
    if not x:
        raise InvalidArgumentError("Give at least one predictor in `x`.")
    if y in x:
        raise InvalidArgumentError(f"{y!r} is both the response and a predictor.")
    require(frame, [y, *x])
    yv, positive = _response(frame, y, kind)
    design = _design(frame, x, intercept)
    keep = yv.notna() & design.notna().all(axis=1)
    yv, design = yv[keep], design[keep]
    if len(yv) <= design.shape[1]:
        raise InvalidArgumentError(
            f"Only {len(yv)} complete rows for {design.shape[1]} parameters; need more rows or fewer predictors."
        )
    body = _ols(yv, design, robust, confidence) if kind == "ols" else _logit(yv, design, robust, confidence)
    return jsonable(
        {
            "kind": kind,
            "y": y,
            "x": x,
            "n": int(len(yv)),
            "dropped_rows": int((~keep).sum()),
            "positive_class": positive,
            **body,
        }
    )


def regress_formula(
    frame: pd.DataFrame, text: str, kind: str = "ols", robust: bool = False, confidence: float = 0.95
) -> dict[str, Any]:
    """Fit a validated formula such as 'y ~ x1*x2 + log(x3) + C(group)' (see `formula.py`).

    Raises:
        InvalidArgumentError / ColumnError: as `formula.parse`, `formula.expand` and `regress`.
    """
    parsed = formula.parse(text, [str(c) for c in frame.columns])
    work, names = formula.expand(frame, parsed)
    out = regress(work, parsed.response, names, kind, robust, parsed.intercept, confidence)
    out["formula"] = text
    return out
