"""Linear least squares by a pivoted QR factorization of the column-scaled design.

Contract: `solve(X, y, names)` scales every column of X to unit Euclidean norm, factors the scaled
matrix as X·D⁻¹·P = Q·R with column pivoting (LAPACK `geqp3` through SciPy), decides the numerical
rank from R's diagonal with a tolerance relative to the scaled design (``max(n, k)·ε·|R₀₀|``), and
returns the estimates and the unscaled covariance (X'X)⁻¹ = D⁻¹·P·R⁻¹R⁻ᵀ·Pᵀ·D⁻¹ from the same
factorization. Heteroskedasticity-robust covariances (HC0–HC3) reuse Q and R too.

Why not statsmodels' own fit: it forms (X'X)⁻¹ as ``inv(RᵀR)`` — the condition number squared — and
tests the rank of the unscaled design, so on NIST Filip (scaled condition ≈ 1e7, unscaled ≈ 1e15)
it reports a rank-deficient design, the wrong degrees of freedom and standard errors off by a factor
of 20. Column scaling removes the units from the condition number and R⁻¹ keeps the digits the
normal equations throw away. A rank-deficient design raises `CollinearityError` naming the terms
(which combination of which other terms reproduces each); this module never guesses which term a
caller would rather drop. It never imports statsmodels or mcp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from .errors import InvalidArgumentError

HC_TYPES = ("HC0", "HC1", "HC2", "HC3")


class CollinearityError(InvalidArgumentError):
    """The design is rank-deficient: `dependent` are linear combinations of the other terms."""

    def __init__(self, message: str, dependent: list[str]) -> None:
        super().__init__(message)
        self.dependent = dependent


@dataclass
class LeastSquares:
    """A full-rank least-squares fit: estimates, unscaled covariance and the factors to reuse."""

    params: np.ndarray
    cov_unscaled: np.ndarray
    resid: np.ndarray
    rank: int
    condition_number: float
    q: np.ndarray
    r_inv: np.ndarray
    perm: np.ndarray
    scale: np.ndarray

    def robust_cov(self, kind: str) -> np.ndarray:
        """The HC0–HC3 sandwich covariance, from Q and R⁻¹ (no second factorization, no n×n matrix).

        Raises:
            InvalidArgumentError: unknown kind, or a leverage of 1 (HC2/HC3 undefined for that row).
        """
        if kind not in HC_TYPES:
            raise InvalidArgumentError(f"Unknown robust covariance {kind!r}; use one of {list(HC_TYPES)}.")
        n, k = self.q.shape
        e2 = self.resid**2
        leverage = np.einsum("ij,ij->i", self.q, self.q)
        if kind in ("HC2", "HC3") and np.any(leverage > 1 - 1e-12):
            raise InvalidArgumentError(
                f"{int((leverage > 1 - 1e-12).sum())} row(s) have leverage 1 (a predictor value only they take), so "
                f"{kind} standard errors are undefined; use robust=false or remove those rows."
            )
        weights = {
            "HC0": e2,
            "HC1": e2 * n / (n - k),
            "HC2": e2 / (1 - leverage),
            "HC3": e2 / (1 - leverage) ** 2,
        }[kind]
        a = self.q @ self.r_inv.T  # rows of X(X'X)^-1 in scaled, pivoted coordinates
        meat = a.T @ (a * weights[:, None])
        return _unpivot(meat, self.perm, self.scale)


def _unpivot(matrix_pivoted: np.ndarray, perm: np.ndarray, scale: np.ndarray) -> np.ndarray:
    out = np.empty_like(matrix_pivoted)
    out[np.ix_(perm, perm)] = matrix_pivoted
    return out / np.outer(scale, scale)


def _combination(xs: np.ndarray, column: int, others: np.ndarray, names: list[str]) -> str:
    """'a - 2·b + c' : how the kept columns reproduce one dependent column (largest weights first)."""
    coef, *_ = np.linalg.lstsq(xs[:, others], xs[:, column], rcond=None)
    order = np.argsort(-np.abs(coef))
    parts = [(names[others[i]], coef[i]) for i in order if abs(coef[i]) > 1e-8 * max(np.abs(coef).max(), 1e-300)]
    if not parts:
        return "all zeros"
    return " + ".join(f"{w:.4g}·{name!r}" for name, w in parts[:6]) + (" + …" if len(parts) > 6 else "")


def _refine(
    x_p: np.ndarray, d: np.ndarray, y: np.ndarray, q: np.ndarray, r: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Björck's iterative refinement of the augmented system [I X; Xᵀ 0][r; β] = [y; 0].

    `x_p` is the unscaled design in pivoted column order, `d` its column norms (so x_p = Q·R·diag(d)) and `z` the
    scaled solution (β = z / d); it returns β (pivoted order) and the residuals. The corrections' right-hand sides
    are formed from the stored data in extended precision (`np.longdouble`), so the solution converges to the
    least-squares solution of the data as given rather than stopping where one double-precision solve does: on
    Wampler5 (residuals 10⁷ times the coefficients) that is the difference between 6.9 and ≥ 9 correct digits.
    It stops once a correction no longer changes the estimates.
    """
    xd = x_p.astype(np.longdouble)
    yd = y.astype(np.longdouble)
    beta = z.astype(np.longdouble) / d
    rd = yd - xd @ beta
    for _ in range(3):
        f = (yd - rd - xd @ beta).astype(float)
        g = (-(xd.T @ rd)).astype(float)
        u = linalg.solve_triangular(r, g / d, trans="T", check_finite=False)
        qf = q.T @ f
        dz = linalg.solve_triangular(r, qf - u, check_finite=False)
        beta += dz / d
        rd += f - q @ (qf - u)
        if np.all(np.abs(dz / d) <= 1e-18 * np.abs(beta).astype(float)):
            break
    return beta.astype(float), (yd - xd @ beta).astype(float)


def solve(x: np.ndarray, y: np.ndarray, names: list[str]) -> LeastSquares:
    """Least-squares fit of y on the columns of x.

    Raises:
        CollinearityError: a column is all zeros or the scaled design is numerically rank-deficient; the
            message names each dependent term and the terms that reproduce it.
    """
    n, k = x.shape
    norms = np.linalg.norm(x, axis=0)
    zero = [names[j] for j in range(k) if not norms[j] > 0]
    if zero:
        raise CollinearityError(
            f"Predictor(s) {zero} are zero in every used row, so their coefficients are not identified; drop them.",
            zero,
        )
    xs = x / norms
    q, r, perm = linalg.qr(xs, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(r))
    tol = max(n, k) * np.finfo(float).eps * diag[0]
    rank = int((diag > tol).sum())
    if rank < k:
        kept, dependent = perm[:rank], perm[rank:]
        detail = "; ".join(f"{names[j]!r} ≈ {_combination(xs, j, kept, names)}" for j in dependent)
        raise CollinearityError(
            f"The design is rank-deficient (rank {rank} of {k} terms): {detail}. Drop one term of each combination "
            "(or pass drop_collinear=true to fit without them).",
            [names[j] for j in dependent],
        )
    z = linalg.solve_triangular(r, q.T @ y, check_finite=False)
    singular = linalg.svdvals(r)
    kappa = float(singular[0] / singular[-1])
    resid = y - q @ (q.T @ y)
    # Forward error bound of one QR solve: ε·(κ + κ²·‖r‖/(‖A‖·‖z‖)). Refine only where it could cost digits,
    # so a well-conditioned million-row fit pays nothing extra.
    bound = np.finfo(float).eps * (kappa + kappa**2 * np.linalg.norm(resid) / (singular[0] * np.linalg.norm(z)))
    if bound > 1e-13:
        beta, resid = _refine(x[:, perm], norms[perm], y, q, r, z)
    else:
        beta = z / norms[perm]
    r_inv = linalg.solve_triangular(r, np.eye(k), check_finite=False)
    params = np.empty(k)
    params[perm] = beta
    return LeastSquares(
        params=params,
        cov_unscaled=_unpivot(r_inv @ r_inv.T, perm, norms),
        resid=resid,
        rank=rank,
        condition_number=kappa,
        q=q,
        r_inv=r_inv,
        perm=perm,
        scale=norms,
    )
