"""The predicted-value models' mathematics (retention/value/clv.py), without the database.

What a user relies on: the fitted parameters are the maximum-likelihood ones (the
gradient the optimiser follows is the likelihood's), a fit on data drawn from known
parameters gives those parameters back, and the predictions stay in range for every
customer history and parameter set. The fit on the published CDNOW sample is in
test_predictions.py, which reads it through the database.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scipy import optimize, special

from retention.value import clv

BGNBD_TRUE = (0.25, 4.0, 0.8, 2.5)  # r, alpha, a, b: close to the CDNOW fit
GAMMA_GAMMA_TRUE = (6.0, 4.0, 15.0)  # p, q, gamma: close to the CDNOW spend fit


def relative_errors(fit: clv.Fit, true) -> dict[str, float]:
    return {name: abs(fit.params[name] / value - 1) for name, value in zip(fit.params, true)}


# Recovery ---------------------------------------------------------------------------------------


def test_bgnbd_fit_recovers_the_parameters_the_purchases_were_drawn_from():
    """50,000 customers simulated from r=0.25, α=4, a=0.8, b=2.5, each observed for
    39 to 78 weeks. r and α come back within 5 %, a and b within 15 % (about three of
    their standard errors at this size, a and b being the harder to pin down)."""
    rng = np.random.default_rng(20050301)
    T = rng.uniform(39, 78, 50_000)
    x, t_x, T = clv.simulate_bgnbd(BGNBD_TRUE, 50_000, T, rng)

    fit = clv.BGNBD(x, t_x, T).fit()

    assert fit.converged and fit.customers == 50_000
    errors = relative_errors(fit, BGNBD_TRUE)
    assert errors["r"] < 0.05 and errors["alpha"] < 0.05, fit.params
    assert errors["a"] < 0.15 and errors["b"] < 0.15, fit.params
    assert math.isfinite(fit.log_likelihood) and fit.log_likelihood < 0


def test_gamma_gamma_fit_recovers_the_spend_parameters_and_the_mean_spend():
    """100,000 repeat buyers with 1 to 14 repeat purchases each, spend drawn from
    p=6, q=4, γ=15. q comes back within 3 %, p and γ within 10 % (they trade off
    against each other; 10 % is over three standard errors here) and the population's
    mean spend per purchase, pγ/(q−1) = 30, within 2 %."""
    rng = np.random.default_rng(20130101)
    x = rng.integers(1, 15, 100_000).astype(float)
    m = clv.simulate_gamma_gamma(GAMMA_GAMMA_TRUE, x, rng)

    fit = clv.GammaGamma(x, m).fit()

    assert fit.converged and fit.customers == 100_000
    p, q, gamma = fit.params["p"], fit.params["q"], fit.params["gamma"]
    assert abs(q / 4 - 1) < 0.03, fit.params
    assert abs(p / 6 - 1) < 0.10 and abs(gamma / 15 - 1) < 0.10, fit.params
    assert abs(p * gamma / (q - 1) / 30 - 1) < 0.02
    # Spend drawn independently of frequency: the assumption's check reads about zero.
    assert abs(fit.extra["frequency_spend_correlation"]) < 0.02


# The likelihood ---------------------------------------------------------------------------------


def bgnbd_log_likelihood_directly(params, x, t_x, T) -> float:
    """Fader, Hardie and Lee (2005), equation 6, one customer at a time."""
    r, alpha, a, b = params
    total = 0.0
    for xi, ti, Ti in zip(x, t_x, T):
        common = (special.gammaln(r + xi) + r * math.log(alpha) - special.gammaln(r)
                  - special.betaln(a, b))
        first = math.exp(common + special.betaln(a, b + xi) - (r + xi) * math.log(alpha + Ti))
        second = 0.0
        if xi > 0:
            second = math.exp(common + special.betaln(a + 1, b + xi - 1)
                              - (r + xi) * math.log(alpha + ti))
        total += math.log(first + second)
    return total


def test_bgnbd_log_likelihood_is_the_papers_equation_summed_over_customers():
    x = np.array([0, 0, 1, 2, 2, 7, 15], dtype=float)
    t_x = np.array([0, 0, 3.5, 30.43, 10.0, 35.0, 38.0])
    T = np.array([38.86, 20.0, 30.0, 38.86, 38.86, 36.0, 39.0])
    params = (0.243, 4.414, 0.793, 2.426)

    value, _ = clv.BGNBD(x, t_x, T).neg_log_likelihood(np.log(params))

    assert -value == pytest.approx(bgnbd_log_likelihood_directly(params, x, t_x, T), rel=1e-12)


@pytest.mark.parametrize("theta", [np.log([0.243, 4.414, 0.793, 2.426]),
                                   np.log([2.0, 0.5, 3.0, 0.4])])
def test_bgnbd_gradient_matches_finite_differences(theta):
    rng = np.random.default_rng(7)
    x, t_x, T = clv.simulate_bgnbd(BGNBD_TRUE, 500, rng.uniform(10, 60, 500), rng)
    model = clv.BGNBD(x, t_x, T)

    analytic = model.neg_log_likelihood(theta)[1]
    numeric = optimize.approx_fprime(theta, lambda t: model.neg_log_likelihood(t)[0], 1e-6)

    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("theta", [np.log([6.25, 3.74, 15.44]), np.log([0.7, 12.0, 2.0])])
def test_gamma_gamma_gradient_matches_finite_differences(theta):
    rng = np.random.default_rng(8)
    x = rng.integers(1, 10, 500).astype(float)
    model = clv.GammaGamma(x, clv.simulate_gamma_gamma(GAMMA_GAMMA_TRUE, x, rng))

    analytic = model.neg_log_likelihood(theta)[1]
    numeric = optimize.approx_fprime(theta, lambda t: model.neg_log_likelihood(t)[0], 1e-6)

    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("x", [[1, 2, 3, 1, 2, 5, 1, 1, 2, 3] * 10, [1, 1, 2, 3, 1, 1, 2, 4] * 3,
                               [1] * 10, [2, 2, 2]])
@pytest.mark.parametrize("price", [9.99, 100.0, 250.0])
def test_identical_spend_everywhere_is_reported_as_not_converged_rather_than_fitted(x, price):
    """Every repeat purchase at one price (one course, one price): the likelihood grows
    without bound as p and q do, so there is no fit to report, and no exception
    either (γ underflowing to 0 once made the log-likelihood raise)."""
    fit = clv.GammaGamma(x, np.full(len(x), price)).fit()

    assert not fit.converged


def test_nobody_buying_twice_is_reported_as_not_converged():
    """Without a repeat purchase the drop-out parameters are not identified."""
    fit = clv.BGNBD(np.zeros(50), np.zeros(50), np.full(50, 30.0)).fit()

    assert not fit.converged
    assert "boundary" in fit.message


@pytest.mark.parametrize(("x", "t_x", "T", "problem"), [
    ([], [], [], "no customers"),
    ([1], [5.0], [4.0], "recency ≤ T"),
    ([0], [2.0], [4.0], "recency of 0"),
    ([1, 2], [1.0], [4.0, 5.0], "differ in length"),
])
def test_impossible_histories_are_refused_with_the_reason(x, t_x, T, problem):
    with pytest.raises(clv.FitFailed, match=problem):
        clv.BGNBD(x, t_x, T)


def test_gamma_gamma_refuses_customers_without_repeat_purchases():
    with pytest.raises(clv.FitFailed, match="repeat buyers only"):
        clv.GammaGamma([0, 2], [10.0, 20.0])


# Predictions ------------------------------------------------------------------------------------


def test_worked_example_of_the_paper_expects_about_1_226_purchases_in_39_weeks():
    """Fader, Hardie and Lee (2005), section 4: with the CDNOW parameters, a customer
    with x=2, t_x=30.43 and T=38.86 is expected to make 1.226 purchases in the next
    39 weeks."""
    params = (0.243, 4.414, 0.793, 2.426)

    expected = clv.BGNBD.expected_purchases(params, 2.0, 30.43, 38.86, 39.0)

    assert float(expected) == pytest.approx(1.226, abs=0.001)


def test_undiscounted_twelve_months_equal_the_expectation_over_a_year():
    params = (0.243, 4.414, 0.793, 2.426)
    x, t_x, T = np.array([0.0, 2.0, 9.0]), np.array([0.0, 30.43, 20.0]), np.array([38.86] * 3)

    total, if_active = clv.discounted_purchases(params, x, t_x, T, monthly_discount=0.0)
    discounted, _ = clv.discounted_purchases(params, x, t_x, T, monthly_discount=0.01)

    year = clv.BGNBD.expected_purchases(params, x, t_x, T, clv.WEEKS_PER_YEAR)
    np.testing.assert_allclose(total, year, rtol=1e-12)
    # P(alive) from the paper: 1 for x = 0, else 1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x)),
    # worked by hand for these three customers.
    assert total / if_active == pytest.approx([1.0, 0.72658, 0.06213], abs=1e-5)
    assert (discounted < total).all() and (discounted > total / 1.01 ** 12).all()


def test_a_customer_who_went_quiet_long_ago_is_less_likely_active_than_a_recent_one():
    params = (0.243, 4.414, 0.793, 2.426)

    recent, quiet = clv.BGNBD.probability_alive(
        params, np.array([4.0, 4.0]), np.array([38.0, 5.0]), np.array([38.86, 38.86]))

    assert 0.8 < recent <= 1
    assert quiet < 0.3 * recent


def test_expected_purchases_at_a_equal_to_one_lie_between_their_neighbours():
    """Equations 9 and 10 divide by a − 1; the expectation has a finite limit there
    (a fit landing on a = 1 once gave a division by zero)."""
    def expected(a):
        params = (0.5, 4.0, a, 2.5)
        return (float(clv.BGNBD.expected_purchases(params, 2.0, 10.0, 20.0, 52.0)),
                float(clv.BGNBD.population_expected(params, 52.0)))

    below, at_one, above = expected(0.999), expected(1.0), expected(1.001)

    for low, middle, high in zip(above, at_one, below):  # both decrease as a grows
        assert low < middle < high


# Properties -------------------------------------------------------------------------------------

@st.composite
def parameters(draw):
    """(r, α, a, b) over a wide range.

    Leaves out two places a fit never lands on so exactly, where SciPy's hyp2f1 (the
    Gauss hypergeometric function of equation 10) fails: a − r within 1e-9 of a whole
    number, which makes its c − a − b whole too (it can return inf within about 1e-13
    of that), and a + b = 1 exactly, which makes its c = 0 for x = 0 (nan).
    """
    r = draw(st.floats(0.01, 20))
    a = draw(st.floats(0.05, 20))
    b = draw(st.floats(0.05, 50))
    assume(abs(a - r - round(a - r)) > 1e-9)
    assume(a + b != 1)
    return r, draw(st.floats(0.05, 200)), a, b


@st.composite
def histories(draw):
    """(x, t_x, T) that can happen: x repeat purchase days, so the last one at least
    x days after the first (t_x ≥ x / 7 weeks), and T ≥ t_x; up to ten years."""
    T = draw(st.floats(0.1, 520))
    x = draw(st.integers(0, min(1000, int(7 * T))))
    t_x = 0.0 if x == 0 else x / 7 + draw(st.floats(0, 1)) * (T - x / 7)
    return float(x), t_x, T


@hsettings(max_examples=300, deadline=None)
@given(params=parameters(), history=histories())
def test_probability_alive_stays_between_zero_and_one(params, history):
    x, t_x, T = history

    alive = clv.BGNBD.probability_alive(params, np.array([x]), np.array([t_x]), np.array([T]))

    assert 0 <= alive[0] <= 1


@hsettings(max_examples=300, deadline=None)
@given(params=parameters(), history=histories(),
       horizons=st.lists(st.floats(0, 104), min_size=2, max_size=6))
def test_expected_purchases_are_never_negative_and_grow_with_the_horizon(params, history,
                                                                        horizons):
    """Over horizons of up to two years, up to rounding: a millionth of a purchase (for
    a near 1 equation 10 divides a difference of nearly equal numbers by a − 1)."""
    x, t_x, T = history
    t = np.array(sorted(horizons))

    expected = clv.BGNBD.expected_purchases(params, x, t_x, T, t)

    assert np.isfinite(expected).all()
    assert (expected >= -1e-6).all()
    assert (np.diff(expected) >= -1e-6).all()


@hsettings(max_examples=100, deadline=None)
@given(params=parameters(), T=st.floats(0, 520))
def test_customers_without_a_repeat_purchase_are_certainly_active(params, T):
    """BG/NBD customers can drop out only just after a purchase; the first one is the
    start of the observation, so x = 0 leaves no chance to have dropped out."""
    alive = clv.BGNBD.probability_alive(params, np.array([0.0]), np.array([0.0]), np.array([T]))

    assert alive[0] == 1


@hsettings(max_examples=200, deadline=None)
@given(params=parameters(), history=histories(), days=st.floats(1, 365))
def test_chance_of_no_purchase_stays_between_zero_and_one(params, history, days):
    x, t_x, T = history

    quiet = clv.BGNBD.probability_no_purchase(params, x, t_x, T, days / 7)

    assert 0 <= quiet <= 1


@hsettings(max_examples=200, deadline=None)
@given(p=st.floats(0.1, 50), q=st.floats(1.05, 50), gamma=st.floats(0.1, 1000),
       x=st.integers(1, 200), m=st.floats(0.01, 100_000))
def test_expected_spend_lies_between_the_customers_mean_and_the_populations(p, q, gamma, x, m):
    """Gamma-Gamma's expectation is a weighted average of the two: more purchases, more
    weight on the customer's own mean."""
    population = p * gamma / (q - 1)

    value = float(clv.GammaGamma.expected_value((p, q, gamma), x, m))

    low, high = min(m, population), max(m, population)
    assert low * (1 - 1e-9) <= value <= high * (1 + 1e-9)


def test_customers_without_repeat_purchases_are_expected_to_spend_the_population_mean():
    value = clv.GammaGamma.expected_value((6.25, 3.74, 15.44), [0, 0], [0.0, 0.0])

    np.testing.assert_allclose(value, 6.25 * 15.44 / 2.74)


def _stopped(gradient: float, monkeypatch):
    """Fit BG/NBD with L-BFGS-B made to stop 'abnormally' at the CDNOW-like optimum,
    leaving the given gradient per customer."""
    real = optimize.minimize

    def abnormal(fun, start, **kwargs):
        result = real(fun, start, **kwargs)
        result.success = False
        result.message = "ABNORMAL_TERMINATION_IN_LNSRCH"
        result.jac = np.full_like(result.jac, gradient)
        return result

    monkeypatch.setattr(clv.optimize, "minimize", abnormal)
    rng = np.random.default_rng(7)
    x, t_x, T = clv.simulate_bgnbd((0.25, 4.0, 0.8, 2.5), 5000, 39.0, rng)
    return clv.BGNBD(x, t_x, T).fit()


def test_a_line_search_that_gives_up_at_the_optimum_is_still_a_converged_fit(monkeypatch):
    """At a million customers L-BFGS-B can stop with ABNORMAL where nothing better is left
    to find; a gradient per customer below clv.STATIONARY is an optimum, and the message
    keeps what the optimiser said."""
    fit = _stopped(1e-8, monkeypatch)

    assert fit.converged is True
    assert "stopped at an optimum" in fit.message and "ABNORMAL" in fit.message


def test_a_line_search_that_gives_up_away_from_the_optimum_is_not_converged(monkeypatch):
    fit = _stopped(1e-3, monkeypatch)

    assert fit.converged is False
    assert fit.message == "ABNORMAL_TERMINATION_IN_LNSRCH"
