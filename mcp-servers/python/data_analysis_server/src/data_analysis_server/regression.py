"""Multiple regression (OLS and logistic) with a full coefficient table, diagnostics and warnings.

Contract: `regress` builds the design from named columns — numeric columns as they are, categorical
ones one-hot encoded with the first level as reference — and `regress_formula` from a formula parsed
by `formula.py`; nothing is ever evaluated as code. OLS estimates and covariance come from the
pivoted, column-scaled QR of `leastsquares.py` (statsmodels' own fit loses 8 digits of the standard
errors on NIST Filip); the derived statistics (t, p, CI, R², F, AIC/BIC) are the textbook formulas on
those numbers and match statsmodels on well-conditioned data. A rank-deficient design is an error
naming the collinear terms unless the caller asks for `drop_collinear`, in which case the fit says
what it dropped. Logit uses statsmodels' MLE and checks for perfect or quasi-complete separation
(which predictor), non-convergence and a singular Hessian: separation is an error, the others are
warnings with the undefined numbers set to null. Rows with a missing value in any used column are
dropped, counted and reported.
"""

from __future__ import annotations

import warnings as _pywarnings
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.stats.stattools import durbin_watson, jarque_bera
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning, PerfectSeparationError

from . import formula, leastsquares, separation
from .caveats import Warning_, defined, warning
from .columns import require
from .errors import ColumnError, InvalidArgumentError
from .tables import jsonable

KINDS = ("ols", "logit")
MAX_DUMMIES = 50
ILL_CONDITIONED = 1e7  # scaled condition number from which fewer than ~9 digits are certain
ROBUST_OLS, ROBUST_LOGIT = "HC3", "HC0"


def _design(frame: pd.DataFrame, x: list[str], intercept: bool) -> pd.DataFrame:
    if intercept and "const" in x:
        raise InvalidArgumentError(
            "A predictor is named 'const', the name of the intercept term; rename it first (transform rename)."
        )
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
    if intercept:
        design.insert(0, "const", 1.0)
    return design


def _response(values: pd.Series, y: str, kind: str) -> tuple[pd.Series, str | None]:
    if kind == "ols":
        if not pd.api.types.is_numeric_dtype(values):
            raise ColumnError(
                f"OLS needs a numeric y; {y!r} has dtype {values.dtype}. Use kind='logit' for a binary outcome."
            )
        return values.astype("float64"), None
    levels = sorted(values.dropna().unique().tolist(), key=str)
    if len(levels) != 2:
        raise ColumnError(f"Logit needs a y with exactly two values; {y!r} has {len(levels)}: {levels[:10]}")
    positive = levels[1]
    return (values == positive).astype("float64").where(values.notna()), str(positive)


def _coef_rows(
    names: list[str],
    params: np.ndarray,
    se: np.ndarray,
    dist: Any,
    confidence: float,
    stat: str,
    reason: str,
    undefined: bool = False,
) -> list[dict[str, Any]]:
    crit = float(dist.ppf(0.5 + confidence / 2))
    rows = []
    for name, b, s in zip(names, params, se, strict=True):
        row: dict[str, Any] = {"term": name, "estimate": float(b)}
        if defined(row, "std_error", s, reason) is None or not s > 0 or undefined:
            if row["std_error"] is not None:
                row["std_error_reason"] = reason
            for key in (stat, "p_value", "ci_low", "ci_high"):
                row[key], row[f"{key}_reason"] = None, reason
        else:
            t = b / s
            row[stat] = float(t)
            row["p_value"] = float(2 * dist.sf(abs(t)))
            row["ci_low"], row["ci_high"] = float(b - crit * s), float(b + crit * s)
        rows.append(row)
    return rows


def _vif(design: pd.DataFrame) -> dict[str, float] | None:
    cols = [c for c in design.columns if c != "const"]
    if len(cols) < 2 or "const" not in design.columns:
        return None
    values = design.to_numpy()
    with np.errstate(divide="ignore"):
        return {str(c): float(variance_inflation_factor(values, design.columns.get_loc(c))) for c in cols}


def _diagnostics(resid: np.ndarray, design: pd.DataFrame, kappa: float) -> dict[str, Any]:
    # statsmodels warns about conditioning in Breusch-Pagan/VIF; the result's own `ill_conditioned` warning says it.
    with _pywarnings.catch_warnings():
        _pywarnings.simplefilter("ignore")
        return _diagnostics_quiet(resid, design, kappa)


def _diagnostics_quiet(resid: np.ndarray, design: pd.DataFrame, kappa: float) -> dict[str, Any]:
    out: dict[str, Any] = {"condition_number": kappa}
    if not np.any(resid):
        return {**out, "note": "residuals are all zero (exact fit): residual diagnostics are undefined"}
    out["durbin_watson"] = float(durbin_watson(resid))
    jb, jb_p, skew, kurt = jarque_bera(resid)
    out["jarque_bera"] = {"statistic": jb, "p_value": jb_p, "skew": skew, "kurtosis": kurt}
    if "const" in design.columns and design.shape[1] > 1:
        lm, lm_p, _, _ = het_breuschpagan(resid, design.to_numpy())
        out["breusch_pagan"] = {"statistic": lm, "p_value": lm_p}
    out["vif"] = _vif(design)
    return out


def _f_test(params: np.ndarray, cov: np.ndarray, names: list[str], df_resid: float) -> tuple[float, float, int]:
    """Wald F that every non-constant coefficient is zero (with the model's covariance)."""
    idx = [i for i, n in enumerate(names) if n != "const"]
    b = params[idx]
    with np.errstate(all="ignore"):
        f = float(b @ np.linalg.solve(cov[np.ix_(idx, idx)], b) / len(idx))
    return f, float(stats.f.sf(f, len(idx), df_resid)), len(idx)


def _constant_predictors(x: np.ndarray, names: list[str]) -> None:
    if "const" not in names:
        return
    constant = [(n, x[0, j]) for j, n in enumerate(names) if n != "const" and np.ptp(x[:, j]) == 0]
    if constant:
        listed = ", ".join(f"{n!r} (always {v:g})" for n, v in constant)
        raise leastsquares.CollinearityError(
            f"Predictor(s) {listed} are constant in the rows used, so they duplicate the intercept and their "
            "coefficients are not identified. Drop them, or fit without an intercept (intercept=false / '- 1').",
            [n for n, _ in constant],
        )


def _solve(x: np.ndarray, yv: np.ndarray, names: list[str], drop: bool, notes: list[Warning_]) -> Any:
    try:
        _constant_predictors(x, names)
        return leastsquares.solve(x, yv, names), names
    except leastsquares.CollinearityError as exc:
        if not drop:
            raise
        keep = [i for i, n in enumerate(names) if n not in exc.dependent]
        detail = str(exc).split(" Drop")[0]
        notes.append(warning("collinear_terms_dropped", f"Dropped {exc.dependent} (drop_collinear=true). {detail}"))
        return leastsquares.solve(x[:, keep], yv, [names[i] for i in keep]), [names[i] for i in keep]


def _ols(yv: pd.Series, design: pd.DataFrame, robust: bool, confidence: float, drop: bool) -> dict[str, Any]:
    notes: list[Warning_] = []
    fit, names = _solve(
        design.to_numpy(dtype="float64"), yv.to_numpy(dtype="float64"), list(design.columns), drop, notes
    )
    design = design[names]
    n, k = design.shape
    ones = np.ones(n)
    # statsmodels' rule: a design whose columns span the constant (e.g. every dummy of a factor) has an implicit
    # intercept, so R² and F are centred.
    k_const = int("const" in names or np.linalg.norm(ones - fit.q @ (fit.q.T @ ones)) < 1e-8 * np.sqrt(n))
    df_resid, df_model = n - fit.rank, fit.rank - k_const
    y = yv.to_numpy(dtype="float64")
    ssr = float(fit.resid @ fit.resid)
    tss = float(((y - y.mean()) ** 2).sum()) if k_const else float(y @ y)
    if np.ptp(y) == 0:
        raise InvalidArgumentError(
            f"The response is constant (every used value is {y[0]:g}): there is no variation to explain. "
            "Pick another y or check the filter."
        )
    scale = ssr / df_resid
    if fit.condition_number >= ILL_CONDITIONED:
        digits = max(0, int(16 - np.log10(fit.condition_number)))
        notes.append(
            warning(
                "ill_conditioned",
                f"The column-scaled design has condition number {fit.condition_number:.2g}: expect only about "
                f"{digits} correct significant digits in the estimates and standard errors; centre or rescale the "
                "predictors, or use orthogonal polynomials poly(x, k).",
            )
        )
    exact = np.sqrt(ssr) <= 1e-13 * np.linalg.norm(y)
    if exact:
        notes.append(
            warning(
                "perfect_fit",
                "The residuals are (numerically) zero: the model reproduces y exactly, so standard errors are 0 and "
                "t statistics, p-values and confidence intervals are undefined (null).",
            )
        )
    if robust:
        cov = fit.robust_cov(ROBUST_OLS)
        dist: Any = stats.norm
        stat = "z"
    else:
        cov = fit.cov_unscaled * scale
        dist, stat = stats.t(df_resid), "t"
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    reason = "perfect fit: residuals are zero" if exact else "standard error is not a positive number"
    out: dict[str, Any] = {
        "coefficients": _coef_rows(names, fit.params, se, dist, confidence, stat, reason, exact),
        "df_model": float(df_model),
        "df_resid": float(df_resid),
        "rank": fit.rank,
        "condition_number": fit.condition_number,
        "condition_number_of": "the design with each column scaled to unit length (2-norm)",
        "covariance": f"{ROBUST_OLS} (heteroskedasticity-robust)" if robust else "nonrobust",
        "residual_std_error": float(np.sqrt(scale)),
    }
    r2 = 1 - ssr / tss if tss > 0 else float("nan")
    defined(out, "r_squared", r2, "y is constant: R² is undefined")
    defined(out, "adj_r_squared", 1 - (n - k_const) / df_resid * (1 - r2), "y is constant: R² is undefined")
    llf = -n / 2 * (np.log(2 * np.pi) + np.log(ssr / n) + 1) if ssr > 0 else float("inf")
    defined(out, "aic", -2 * llf + 2 * (df_model + k_const), "perfect fit: the log-likelihood is unbounded")
    defined(out, "bic", -2 * llf + np.log(n) * (df_model + k_const), "perfect fit: the log-likelihood is unbounded")
    if df_model > 0 and not exact:
        if robust:
            f, f_p, _ = _f_test(fit.params, cov, names, df_resid)
        else:
            f = (tss - ssr) / df_model / scale
            f_p = float(stats.f.sf(f, df_model, df_resid))
        defined(out, "f_statistic", f, "the F statistic is undefined for this design")
        defined(out, "f_p_value", f_p, "the F statistic is undefined for this design")
    else:
        why = "perfect fit: residuals are zero" if exact else "no predictor besides the intercept"
        for key in ("f_statistic", "f_p_value"):
            out[key], out[f"{key}_reason"] = None, why
    out["diagnostics"] = _diagnostics(fit.resid, design, fit.condition_number)
    return {**out, "warnings": notes, "x_terms": names}


def _logit_fit(yv: pd.Series, design: pd.DataFrame, robust: bool) -> tuple[Any, list[str]]:
    caught: list[str] = []
    with _pywarnings.catch_warnings(record=True) as seen:
        _pywarnings.simplefilter("always")
        try:
            fit = sm.Logit(yv, design).fit(disp=0, maxiter=200, cov_type=ROBUST_LOGIT if robust else "nonrobust")
        except (PerfectSeparationError, np.linalg.LinAlgError) as exc:
            raise InvalidArgumentError(
                f"Logit failed: {type(exc).__name__}; check for a predictor that perfectly predicts y or for "
                "collinear predictors."
            ) from None
    for w in seen:
        if issubclass(w.category, ConvergenceWarning):
            caught.append("not_converged")
        elif issubclass(w.category, HessianInversionWarning):
            caught.append("hessian_not_invertible")
        elif "separation" in str(w.message).lower():
            caught.append("separation")
    return fit, caught


def _logit(yv: pd.Series, design: pd.DataFrame, robust: bool, confidence: float, drop: bool) -> dict[str, Any]:
    notes: list[Warning_] = []
    names = list(design.columns)
    _, names = _solve(design.to_numpy(dtype="float64"), yv.to_numpy(dtype="float64"), names, drop, notes)
    design = design[names]
    separation.check(yv.to_numpy(dtype="float64"), design)
    fit, caught = _logit_fit(yv, design, robust)
    converged = bool(fit.mle_retvals.get("converged", True)) and "not_converged" not in caught
    fitted = np.asarray(fit.predict())
    if "separation" in caught or not converged or np.any((fitted < 1e-10) | (fitted > 1 - 1e-10)):
        separation.check_combined(yv.to_numpy(dtype="float64"), design)
    if not converged:
        notes.append(
            warning(
                "not_converged",
                "The logit fit did not converge in 200 iterations: estimates, standard errors and p-values are "
                "unreliable. Rescale predictors, remove near-duplicate predictors, or collect more data.",
            )
        )
    se = np.asarray(fit.bse, dtype="float64")
    if "hessian_not_invertible" in caught or not np.all(np.isfinite(se) & (se > 0)):
        notes.append(
            warning(
                "hessian_not_invertible",
                "The Hessian of the log-likelihood could not be inverted at the estimate: standard errors, z, p "
                "and confidence intervals are undefined (null). Remove redundant predictors or merge rare "
                "categories.",
            )
        )
        se = np.full(len(names), np.nan)
    table = _coef_rows(names, np.asarray(fit.params), se, stats.norm, confidence, "z", "the Hessian is singular")
    for row in table:
        defined(row, "odds_ratio", np.exp(row["estimate"]), "exp(estimate) overflows")
    out: dict[str, Any] = {
        "coefficients": table,
        "converged": converged,
        "covariance": f"{ROBUST_LOGIT} (robust)" if robust else "nonrobust",
        "rank": len(names),
    }
    for key, value in (
        ("pseudo_r_squared", fit.prsquared),
        ("llr", fit.llr),
        ("llr_p_value", fit.llr_pvalue),
        ("log_likelihood", fit.llf),
        ("aic", fit.aic),
        ("bic", fit.bic),
    ):
        defined(out, key, value, "undefined for this fit")
    return {**out, "warnings": notes, "x_terms": names}


def fit_design(
    yv: pd.Series,
    design: pd.DataFrame,
    kind: str,
    robust: bool,
    confidence: float,
    drop_collinear: bool = False,
) -> dict[str, Any]:
    """Fit a prepared response and design (complete cases only) and return the result dict.

    Raises:
        InvalidArgumentError: unknown kind, too few rows, collinear terms, separation. ColumnError: bad y.
    """
    if kind not in KINDS:
        raise InvalidArgumentError(f"Unknown kind {kind!r}; use one of {list(KINDS)}")
    keep = yv.notna() & design.notna().all(axis=1) & np.isfinite(design.to_numpy(dtype="float64")).all(axis=1)
    dropped = int((~keep).sum())
    yv, design = yv[keep], design[keep]
    if design.shape[1] == 0:
        raise InvalidArgumentError("The model has no terms: give a predictor, or keep the intercept.")
    if len(yv) <= design.shape[1]:
        raise InvalidArgumentError(
            f"Only {len(yv)} complete rows for {design.shape[1]} parameters ({dropped} rows dropped for missing "
            "values); need more rows than parameters: use fewer predictors or fill missing values first."
        )
    body = (_ols if kind == "ols" else _logit)(yv, design, robust, confidence, drop_collinear)
    if dropped:
        body["warnings"].insert(
            0,
            warning(
                "rows_dropped",
                f"{dropped} of {dropped + len(yv)} rows have a missing or non-finite value in a used column and were "
                "left out; fill or filter them (transform) to decide yourself.",
            ),
        )
    return {"n": int(len(yv)), "dropped_rows": dropped, **body}


def regress(
    frame: pd.DataFrame,
    y: str,
    x: list[str],
    kind: str = "ols",
    robust: bool = False,
    intercept: bool = True,
    confidence: float = 0.95,
    drop_collinear: bool = False,
) -> dict[str, Any]:
    """Fit y ~ x and return the coefficient table, fit statistics, diagnostics and warnings.

    Raises:
        ColumnError: unknown columns, non-numeric y for OLS, non-binary y for logit.
        InvalidArgumentError: unknown kind, no predictors, too few rows, collinear terms, logit separation.
    """
    if not x:
        raise InvalidArgumentError("Give at least one predictor in `x`.")
    if y in x:
        raise InvalidArgumentError(f"{y!r} is both the response and a predictor.")
    require(frame, [y, *x])
    yv, positive = _response(frame[y], y, kind) if kind in KINDS else (frame[y], None)
    out = fit_design(yv, _design(frame, x, intercept), kind, robust, confidence, drop_collinear)
    return jsonable({"kind": kind, "y": y, "x": x, "positive_class": positive, **out})


def regress_formula(
    frame: pd.DataFrame,
    text: str,
    kind: str = "ols",
    robust: bool = False,
    confidence: float = 0.95,
    intercept: bool | None = None,
    drop_collinear: bool = False,
) -> dict[str, Any]:
    """Fit a formula such as 'y ~ x1*x2 + log(x3) + C(g):x1 - 1' (grammar in `formula.py`).

    `intercept`, when given, must agree with the formula (an intercept unless `- 1` / `+ 0`).

    Raises:
        InvalidArgumentError / ColumnError: as `formula.parse`, `formula.build` and `fit_design`.
    """
    parsed = formula.parse(text, [str(c) for c in frame.columns])
    if intercept is not None and intercept != parsed.intercept:
        raise InvalidArgumentError(
            f"intercept={str(intercept).lower()} disagrees with the formula, which "
            + ("has an intercept: add '- 1' or '+ 0' to drop it" if parsed.intercept else "removes the intercept")
            + "; say it in the formula only (omit `intercept`)."
        )
    response, design = formula.build(frame, parsed)
    if kind not in KINDS:
        raise InvalidArgumentError(f"Unknown kind {kind!r}; use one of {list(KINDS)}")
    yv, positive = _response(response, parsed.response, kind)
    out = fit_design(yv, design, kind, robust, confidence, drop_collinear)
    terms = [c for c in design.columns if c != "const"]
    return jsonable(
        {"kind": kind, "y": parsed.response, "x": terms, "positive_class": positive, "formula": text, **out}
    )
