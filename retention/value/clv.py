"""The predicted-value models: BG/NBD and Gamma-Gamma, on NumPy and SciPy.

Written here rather than taken from a library: `lifetimes` (the reference
implementation) is no longer maintained and pulls in pandas, autograd and dill;
PyMC-Marketing fits the same models through PyMC, far beyond what a Django
application should carry. What the application needs is small: two
log-likelihoods, their gradients and a handful of closed-form predictions, all
vectorised over customers (no Python loop over customers anywhere).

Inputs per customer, time in weeks (shared/spec/metrics.md, "Predicted customer
value"): `x` repeat purchases (one purchase per day), `t_x` weeks from the first
to the last purchase, `T` weeks from the first purchase to the as-of date, and for
Gamma-Gamma `m` the mean value of the repeat purchases.

Fitting is maximum likelihood with L-BFGS-B on the logarithms of the parameters
(which keeps them positive without bounds) and analytic gradients. The terms that
depend only on the number of purchases (the log-gamma and digamma functions,
the expensive part) are computed once per distinct `x`, not per customer, so a
million customers cost little more than a few vector operations each iteration.

References: Fader, Hardie and Lee (2005), "Counting your customers the easy way:
an alternative to the Pareto/NBD model", Marketing Science 24(2); Fader and
Hardie (2013), "The Gamma-Gamma model of monetary value".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize, special

WEEKS_PER_YEAR = 365.25 / 7
WEEKS_PER_MONTH = WEEKS_PER_YEAR / 12
# A fitted parameter beyond these is the optimiser running off to a boundary (the
# likelihood is flat there): the fit is reported as not converged.
PARAMETER_RANGE = (1e-6, 1e6)
# The largest gradient of the log-likelihood per customer (with respect to the logarithms
# of the parameters) at which a fit is taken to have reached its optimum.
STATIONARY = 1e-6
# The expectations divide by a − 1 (the limit at a = 1 is finite): a closer to 1 than
# this is moved this far from it, which changes them by about as little.
NEAR_ONE = 1e-4


class FitFailed(Exception):
    """The data cannot be fitted at all (no customers, non-finite values)."""


@dataclass
class Fit:
    """A fitted model: parameters, total log-likelihood, customers and convergence."""

    params: dict[str, float]
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int = 0
    message: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data.pop("params"), **data, **extra}


# Inputs -----------------------------------------------------------------------------------------


def check_inputs(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not (len(x) == len(t_x) == len(T)):
        raise FitFailed("frequency, recency and T differ in length")
    if len(x) == 0:
        raise FitFailed("no customers")
    if not (np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise FitFailed("recency or T is not finite")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T + 1e-9).any():
        raise FitFailed("frequency and recency must be ≥ 0 and recency ≤ T")
    if ((x == 0) & (t_x > 0)).any():
        raise FitFailed("a customer without repeat purchases has a recency of 0")


def _by_count(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct purchase counts, each customer's index into them, and their weights."""
    values, index, counts = np.unique(x, return_inverse=True, return_counts=True)
    return values.astype(float), index, counts.astype(float)


# BG/NBD -----------------------------------------------------------------------------------------


class BGNBD:
    """Expected purchases and the probability of being active (Fader, Hardie and Lee, 2005)."""

    names = ("r", "alpha", "a", "b")

    def __init__(self, x, t_x, T):
        self.x = np.asarray(x, dtype=float)
        self.t_x = np.asarray(t_x, dtype=float)
        self.T = np.asarray(T, dtype=float)
        check_inputs(self.x, self.t_x, self.T)
        self.values, self.index, self.weights = _by_count(self.x)
        repeat = self.x > 0
        self.repeat_x, self.repeat_t_x, self.repeat_T = (
            self.x[repeat], self.t_x[repeat], self.T[repeat])
        # A customer without a repeat purchase contributes through T alone (t_x = 0 and
        # the second term vanishes): group them by T, a whole number of days in real data.
        self.once_T, once_weights = np.unique(self.T[~repeat], return_counts=True)
        self.once_weights = once_weights.astype(float)

    # The likelihood of one customer is
    #   B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
    #   + [x > 0] B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x)),
    # written as exp(A1 + A2) · (exp(A3) + exp(A4)) and summed in log space.
    def neg_log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """−LL and its gradient with respect to log(r), log(α), log(a), log(b)."""
        r, alpha, a, b = np.exp(theta)
        # The logarithms from θ itself: exp(θ) can underflow to 0 far from the optimum.
        log_alpha, log_a = float(theta[1]), float(theta[2])
        v, w = self.values, self.weights
        # Per distinct x: A1 + A2 and their derivatives (the costly special functions).
        per_x = (special.gammaln(r + v) - special.gammaln(r) + r * log_alpha
                 + special.gammaln(a + b) + special.gammaln(b + v) - special.gammaln(b)
                 - special.gammaln(a + b + v))
        dr_x = special.digamma(r + v) - special.digamma(r) + log_alpha
        da_x = special.digamma(a + b) - special.digamma(a + b + v)
        db_x = da_x + special.digamma(b + v) - special.digamma(b)
        # Without a repeat purchase, A4 is −∞: the customer's term is A3 = −r log(α + T).
        log_once = np.log(alpha + self.once_T)
        once_w = self.once_weights
        # With repeat purchases, both terms, added in log space.
        x = self.repeat_x
        log_T = np.log(alpha + self.repeat_T)
        log_t = np.log(alpha + self.repeat_t_x)
        a3 = -(r + x) * log_T
        with np.errstate(divide="ignore"):
            a4 = log_a - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * log_t
        top = np.logaddexp(a3, a4)
        w3 = np.exp(a3 - top)
        w4 = 1.0 - w3
        ll = float(per_x @ w - r * (once_w @ log_once) + top.sum())
        grad_r = float(dr_x @ w - once_w @ log_once - (w3 * log_T + w4 * log_t).sum())
        grad_alpha = float(
            r / alpha * len(self.x) - r * (once_w @ (1 / (alpha + self.once_T)))
            - ((r + x) * (w3 / (alpha + self.repeat_T) + w4 / (alpha + self.repeat_t_x))).sum())
        grad_a = float(da_x @ w + w4.sum() / a)
        grad_b = float(db_x @ w - (w4 / (b + x - 1)).sum())
        # Chain rule to log-parameters: d/dlog θ = θ · d/dθ.
        grad = np.array([grad_r * r, grad_alpha * alpha, grad_a * a, grad_b * b])
        return -ll, -grad

    def start(self) -> np.ndarray:
        """Starting values: a rate from the mean repeat purchases per week, a = b = 1."""
        rate = max(self.x.mean() / max(self.T.mean(), 1e-9), 1e-3)
        return np.log([1.0, 1.0 / rate, 1.0, 1.0])

    def fit(self, *, max_iterations: int = 500) -> Fit:
        return _maximise(self, max_iterations=max_iterations)

    # Predictions (Fader, Hardie and Lee, 2005, equations 10 and 13) ------------------------------

    @staticmethod
    def _ratio_term(params, x, t_x, T):
        """log of (a/(b+x-1)) ((α+T)/(α+t_x))^(r+x) for repeat buyers, −inf for the others."""
        r, alpha, a, b = params
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                x > 0,
                math.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
                -np.inf)

    @classmethod
    def probability_alive(cls, params, x, t_x, T) -> np.ndarray:
        return special.expit(-cls._ratio_term(params, x, t_x, T))

    @staticmethod
    def expected_if_active(params, x, T, t) -> np.ndarray:
        """Expected purchases in (T, T+t] of a customer known to be active.

        Equation 10's numerator: the whole expectation is this times P(active).
        """
        r, alpha, a, b = params
        a = _away_from_one(a)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + T + t)
        hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        base = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return (a + b + x - 1) / (a - 1) * (1 - base * hyper)

    @classmethod
    def expected_purchases(cls, params, x, t_x, T, t) -> np.ndarray:
        return cls.expected_if_active(params, x, T, t) * cls.probability_alive(params, x, t_x, T)

    @classmethod
    def probability_no_purchase(cls, params, x, t_x, T, t) -> np.ndarray:
        """P(no purchase in (T, T+t]): inactive, or active with no purchase (λ ~ Γ(r+x, α+T))."""
        r, alpha, a, b = params
        alive = cls.probability_alive(params, x, t_x, T)
        quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return 1 - alive + alive * quiet

    @staticmethod
    def population_expected(params, t) -> np.ndarray:
        """Expected purchases of a new customer in (0, t] (equation 9)."""
        r, alpha, a, b = params
        a = _away_from_one(a)
        t = np.asarray(t, dtype=float)
        hyper = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyper)


def _away_from_one(a: float) -> float:
    """`a`, or 1 ± NEAR_ONE when it is closer to 1 (equations 9 and 10 divide by a − 1)."""
    if abs(a - 1) < NEAR_ONE:
        return 1 + math.copysign(NEAR_ONE, a - 1)
    return a


# Gamma-Gamma ------------------------------------------------------------------------------------


class GammaGamma:
    """Expected value per purchase (Fader and Hardie, 2013); repeat buyers only."""

    names = ("p", "q", "gamma")

    def __init__(self, x, m):
        self.x = np.asarray(x, dtype=float)
        self.m = np.asarray(m, dtype=float)
        if len(self.x) != len(self.m):
            raise FitFailed("frequency and spend differ in length")
        if len(self.x) == 0:
            raise FitFailed("no repeat buyers")
        if (self.x <= 0).any():
            raise FitFailed("Gamma-Gamma is fitted on repeat buyers only")
        if not np.isfinite(self.m).all() or (self.m <= 0).any():
            raise FitFailed("the mean repeat spend must be positive")
        self.values, self.index, self.weights = _by_count(self.x)
        self.log_m = np.log(self.m)
        self.log_x = np.log(self.x)

    # f(m | p, q, γ, x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q m^(px−1) x^(px) / (γ + m x)^(px+q)
    def neg_log_likelihood(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = np.exp(theta)
        log_gamma = float(theta[2])  # not log(exp(θ)): γ can underflow to 0
        v, w = self.values, self.weights
        px = p * v
        per_x = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
        dp_x = v * (special.digamma(px + q) - special.digamma(px))
        dq_x = special.digamma(px + q) - special.digamma(q)
        x = self.x
        log_sum = np.log(gamma + self.m * x)
        pxc = p * x
        ll = float(per_x @ w + len(x) * q * log_gamma
                   + ((pxc - 1) * self.log_m + pxc * self.log_x - (pxc + q) * log_sum).sum())
        grad_p = float(dp_x @ w + (x * (self.log_m + self.log_x - log_sum)).sum())
        grad_q = float(dq_x @ w + len(x) * log_gamma - log_sum.sum())
        grad_gamma = float(len(x) * q / gamma - ((pxc + q) / (gamma + self.m * x)).sum())
        grad = np.array([grad_p * p, grad_q * q, grad_gamma * gamma])
        return -ll, -grad

    def start(self) -> np.ndarray:
        # Moment-style start: a spend scale near the mean, shape terms of a few units.
        return np.log([2.0, 2.0, max(float(self.m.mean()), 1e-3)])

    def fit(self, *, max_iterations: int = 500) -> Fit:
        fit = _maximise(self, max_iterations=max_iterations)
        fit.extra["frequency_spend_correlation"] = correlation(self.x, self.m)
        if fit.params["q"] <= 1:
            fit.converged = False
            fit.message = "q ≤ 1: the model's mean spend is infinite"
        return fit

    @staticmethod
    def expected_value(params, x, m, population_mean=None) -> np.ndarray:
        """E(spend per purchase | x, m); customers without repeat purchases get the mean."""
        p, q, gamma = params
        x = np.asarray(x, dtype=float)
        m = np.asarray(m, dtype=float)
        mean = p * gamma / (q - 1) if population_mean is None else population_mean
        with np.errstate(divide="ignore", invalid="ignore"):
            value = p * (gamma + x * m) / (p * x + q - 1)
        return np.where(x > 0, value, mean)


def correlation(x: np.ndarray, m: np.ndarray) -> float | None:
    """Pearson correlation of purchase frequency and mean spend (Gamma-Gamma assumes ~0)."""
    if len(x) < 3 or np.std(x) == 0 or np.std(m) == 0:
        return None
    return float(np.corrcoef(x, m)[0, 1])


# Fitting ----------------------------------------------------------------------------------------


def _maximise(model, *, max_iterations: int) -> Fit:
    """Maximise the likelihood per customer; the total is reported.

    Per customer, so that the tolerances mean the same for a hundred customers and a
    million: on the total, a relative change of 1e-13 is floating-point noise at a million
    customers, and L-BFGS-B stopped at the optimum with "ABNORMAL" (its line search found
    nothing better to take), which read as a failed fit. A stop where the gradient per
    customer is below STATIONARY is an optimum whatever the optimiser's own message.
    """
    n = len(model.x)

    def per_customer(theta):
        value, gradient = model.neg_log_likelihood(theta)
        return value / n, gradient / n

    start = model.start()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = optimize.minimize(per_customer, start, jac=True, method="L-BFGS-B",
                                   options={"maxiter": max_iterations, "gtol": 1e-10,
                                            "ftol": 1e-15})
    values = np.exp(result.x)
    finite = bool(np.isfinite(result.fun) and np.isfinite(values).all())
    inside = bool(((values > PARAMETER_RANGE[0]) & (values < PARAMETER_RANGE[1])).all())
    gradient = float(np.abs(result.jac).max()) if np.isfinite(result.jac).all() else math.inf
    stationary = gradient < STATIONARY
    converged = bool((result.success or stationary) and finite and inside)
    message = str(result.message)
    if not result.success and stationary:
        message = (f"stopped at an optimum (largest gradient per customer {gradient:.1e}); "
                   f"the optimiser said: {message}")
    if (result.success or stationary) and not inside:
        message = "a parameter ran off to a boundary of its range (the likelihood is flat there)"
    return Fit(params={name: float(value) for name, value in zip(model.names, values)},
               log_likelihood=float(-result.fun * n) if finite else float("nan"),
               customers=n, converged=converged,
               iterations=int(result.nit), message=message)


# Value ------------------------------------------------------------------------------------------


@dataclass
class Ahead:
    """What BG/NBD expects of each customer over the next months (arrays over customers)."""

    alive: np.ndarray  # P(still active)
    expected: np.ndarray  # expected purchases over the whole span
    discounted: np.ndarray  # the same, each month discounted
    discounted_if_active: np.ndarray  # the discounted purchases of a customer known active


def _pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (x, T) pairs and each customer's index into them.

    Customers share pairs (T is a whole number of days, x a small count: a million
    customers have a few thousand), so the hypergeometric function, the costly part of
    the expectations, is evaluated once per pair. x + iT keys both in one sort.
    """
    keys, inverse = np.unique(x + 1j * T, return_inverse=True)
    return keys.real, keys.imag, inverse.reshape(-1)


def purchases_ahead(params, x, t_x, T, *, months: int = 12,
                    monthly_discount: float = 0.0) -> Ahead:
    """Expected purchases over the next `months` months, plain and discounted.

    Month k's expected purchases (the increase of the expectation from month k−1 to k)
    are divided by (1 + monthly_discount)^k, as in the usual discounted CLV.
    """
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    alive = BGNBD.probability_alive(params, x, np.asarray(t_x, dtype=float), T)
    px, pT, inverse = _pairs(x, T)
    total = np.zeros_like(pT)
    previous = np.zeros_like(pT)
    for month in range(1, months + 1):  # twelve vector steps, not a loop over customers
        now = BGNBD.expected_if_active(params, px, pT, month * WEEKS_PER_MONTH)
        total += (now - previous) / (1 + monthly_discount) ** month
        previous = now
    if_active = total[inverse]
    return Ahead(alive=alive, expected=previous[inverse] * alive,
                 discounted=if_active * alive, discounted_if_active=if_active)


def discounted_purchases(params, x, t_x, T, *, months: int = 12, monthly_discount: float = 0.0):
    """(discounted expected purchases, the same if active) over the next `months` months."""
    ahead = purchases_ahead(params, x, t_x, T, months=months, monthly_discount=monthly_discount)
    return ahead.discounted, ahead.discounted_if_active


def simulate_bgnbd(params, customers: int, T: float | np.ndarray, rng: np.random.Generator):
    """Draw (x, t_x, T) from BG/NBD with the given parameters (for recovery tests)."""
    r, alpha, a, b = params
    T = np.broadcast_to(np.asarray(T, dtype=float), (customers,)).copy()
    rate = rng.gamma(r, 1 / alpha, customers)
    drop = rng.beta(a, b, customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    now = np.zeros(customers)
    active = np.ones(customers, dtype=bool)
    while active.any():  # one pass per purchase number, vectorised over customers
        now[active] += rng.exponential(1 / rate[active])
        bought = active & (now <= T)
        x[bought] += 1
        t_x[bought] = now[bought]
        # After each purchase the customer drops out with probability p.
        active = bought & (rng.random(customers) >= drop)
    return x, t_x, T


def simulate_gamma_gamma(params, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean spend of x purchases per customer, drawn from Gamma-Gamma."""
    p, q, gamma = params
    nu = rng.gamma(q, 1 / gamma, len(x))
    # The mean of x Gamma(p, ν) draws is Gamma(p x, ν x).
    return rng.gamma(p * x, 1 / (nu * x))
