"""Benchmark the predicted-value models: fit and score a million customers; compare lifetimes.

    python benchmarks/clv.py [--customers 1000000] [--seed 20260601] [--repeat 3]
                             [--skip-db] [--generate] [--database-url URL]
                             [--skip-lifetimes] [--lifetimes-python PATH]
                             [--lifetimes-customers N] [--profile]

1. Arrays only (retention/value/clv.py, no database): N customers drawn with `simulate_bgnbd`
   (fixed seed; r=0.243, alpha=4.414, a=0.793, b=2.426, the CDNOW estimates of Fader, Hardie
   and Lee; T a whole number of days, uniform on 1..104 weeks per customer) and the repeat
   buyers' mean spend with `simulate_gamma_gamma` (p=6.25, q=3.74, gamma=15.44). Timed, best
   and median of --repeat: the BG/NBD fit, the Gamma-Gamma fit, and the scoring (probability
   alive, expected purchases in 12 months, discounted purchases over 12 months, expected
   spend).
2. The `lifetimes` package's BetaGeoFitter (maximum likelihood, penalizer_coef=0, its default
   tolerance) on the same (x, t_x, T), in a child process run by --lifetimes-python (an
   interpreter with lifetimes installed: `make benchmark-clv` makes a venv of its own under
   var/ so that the application's venv does not carry pandas, autograd and dill). Its time,
   parameters and log-likelihood beside ours; PASS/FAIL for "the same parameters to 3
   significant figures" (each parameter within half a unit of its third significant figure),
   "ours at least 5x faster" and "ours under 30 s".
3. End to end through PostgreSQL, on the data set of benchmarks/metrics_data.py (N customers,
   about 4N orders; written first when the database does not exist, or with --generate, which
   drops and recreates it): `predictions.fit(as_of, purpose=NIGHTLY, store=True)` broken down
   into read_inputs / fit_models / score / _store (in a transaction rolled back afterwards),
   then the whole call as the nightly run makes it, a first night and the same night again.
   --profile prints where the end-to-end call spends its time (cProfile).

Not part of `make test` (pytest collects tests/ only). `make benchmark-clv` installs what it
needs; options through BENCH_ARGS, e.g. `make benchmark-clv BENCH_ARGS="--customers 100000"`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from metrics import database_exists, timed  # noqa: E402  (shared with the metrics benchmark)

DEFAULT_URL = "postgres://root@127.0.0.1:5432/bench_clv"
BGNBD_PARAMS = (0.243, 4.414, 0.793, 2.426)  # r, alpha, a, b
GAMMA_GAMMA_PARAMS = (6.25, 3.74, 15.44)  # p, q, gamma
NAMES = ("r", "alpha", "a", "b")
MONTHLY_DISCOUNT = 0.01  # the application's default (RETENTION_CLV_MONTHLY_DISCOUNT)
SPEEDUP_TARGET = 5.0
SECONDS_TARGET = 30.0
# lifetimes over this many seconds on the full set is run on a subsample instead (see --help).
LIFETIMES_SLOW = 600


# The machine ------------------------------------------------------------------------------------


def machine() -> list[str]:
    lines = []
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines.append(f"machine: {usable} usable cores (nproc; {os.cpu_count()} online), "
                 f"{memory:.1f} GiB memory, {model or platform.machine()}")
    import scipy

    lines.append(f"python {platform.python_version()}, numpy {np.__version__}, "
                 f"scipy {scipy.__version__}")
    lines.extend(blas_info())
    lines.append(load())
    return lines


def load() -> str:
    """Other work on the machine skews the timings: the load averages say how much."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def blas_info() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            return [(f"BLAS (numpy build): {blas.get('name')} {blas.get('version', '')} "
                     "(threadpoolctl not installed: threads unknown)")]
        except Exception:  # noqa: BLE001 - informative only
            return ["BLAS: unknown (no threadpoolctl)"]
    return [(f"BLAS/OpenMP pool: {pool.get('internal_api')} {pool.get('version')} "
             f"({pool.get('threading_layer', '-')}, {pool.get('num_threads')} threads, "
             f"{pool.get('architecture', '-')}) from {Path(pool.get('filepath', '')).name}")
            for pool in threadpool_info()] or ["BLAS: no thread pool found"]


# 1. Arrays only ---------------------------------------------------------------------------------


def simulate(customers: int, seed: int):
    from retention.value import clv

    rng = np.random.default_rng(seed)
    # T in whole days, as the application computes it (days from the first purchase / 7).
    T = rng.integers(7, 729, customers, endpoint=True) / 7
    x, t_x, T = clv.simulate_bgnbd(BGNBD_PARAMS, customers, T, rng)
    repeat = x > 0
    m = np.zeros(customers)
    m[repeat] = clv.simulate_gamma_gamma(GAMMA_GAMMA_PARAMS, x[repeat], rng)
    return x, t_x, T, m


def score_arrays(params, gg_params, x, t_x, T, m):
    """What predictions.score computes per customer, on plain arrays."""
    from retention.value import clv

    alive = clv.BGNBD.probability_alive(params, x, t_x, T)
    expected = clv.BGNBD.expected_purchases(params, x, t_x, T, clv.WEEKS_PER_YEAR)
    discounted, _if_active = clv.discounted_purchases(params, x, t_x, T,
                                                      monthly_discount=MONTHLY_DISCOUNT)
    spend = clv.GammaGamma.expected_value(gg_params, x, m)
    return alive, expected, discounted * spend


def arrays_part(options, report) -> dict:
    from retention.value import clv

    print(f"\n1. arrays only: {options.customers:,} customers simulated (seed {options.seed})",
          flush=True)
    began = time.perf_counter()
    x, t_x, T, m = simulate(options.customers, options.seed)
    simulated = time.perf_counter() - began
    repeat = x > 0
    print(f"   simulate_bgnbd + simulate_gamma_gamma: {simulated:.2f} s; repeat buyers "
          f"{int(repeat.sum()):,} ({repeat.mean():.1%}), mean x {x.mean():.3f}, max x "
          f"{int(x.max())}, distinct x {len(np.unique(x))}", flush=True)

    best, median, fit = timed(lambda: clv.BGNBD(x, t_x, T).fit(), options.repeat)
    params = tuple(fit.params[name] for name in NAMES)
    print(f"   BG/NBD fit: best {best:.2f} s, median {median:.2f} s; {fit.iterations} "
          f"iterations, converged {fit.converged} ({fit.message}); LL {fit.log_likelihood:,.3f}")
    print("      " + ", ".join(f"{n} {v:.6g}" for n, v in zip(NAMES, params))
          + "   (simulated with " + ", ".join(f"{n} {v}" for n, v in zip(NAMES, BGNBD_PARAMS))
          + ")", flush=True)
    report["bgnbd_fit"] = (best, median)

    gg_best, gg_median, gg = timed(lambda: clv.GammaGamma(x[repeat], m[repeat]).fit(),
                                   options.repeat)
    gg_params = (gg.params["p"], gg.params["q"], gg.params["gamma"])
    print(f"   Gamma-Gamma fit ({int(repeat.sum()):,} repeat buyers): best {gg_best:.2f} s, "
          f"median {gg_median:.2f} s; {gg.iterations} iterations, converged {gg.converged}; "
          + ", ".join(f"{n} {v:.6g}" for n, v in zip(("p", "q", "gamma"), gg_params))
          + " (simulated with p 6.25, q 3.74, gamma 15.44)", flush=True)
    report["gamma_gamma_fit"] = (gg_best, gg_median)

    parts = {
        "probability_alive": lambda: clv.BGNBD.probability_alive(params, x, t_x, T),
        "expected_purchases_12m": lambda: clv.BGNBD.expected_purchases(
            params, x, t_x, T, clv.WEEKS_PER_YEAR),
        "discounted_purchases_12m": lambda: clv.discounted_purchases(
            params, x, t_x, T, monthly_discount=MONTHLY_DISCOUNT),
        "gamma_gamma_expected_value": lambda: clv.GammaGamma.expected_value(gg_params, x, m),
    }
    total_best = total_median = 0.0
    for name, work in parts.items():
        b, med, _ = timed(work, options.repeat)
        total_best += b
        total_median += med
        print(f"      {name:>27}: best {b:.2f} s, median {med:.2f} s")
    s_best, s_median, (alive, expected, value) = timed(
        lambda: score_arrays(params, gg_params, x, t_x, T, m), options.repeat)
    print(f"   scoring (all four, as predictions.score does): best {s_best:.2f} s, median "
          f"{s_median:.2f} s; mean P(alive) {alive.mean():.4f}, mean expected purchases 12m "
          f"{expected.mean():.4f}, mean predicted value 12m {value.mean():.2f}; "
          f"non-finite {int((~np.isfinite(alive)).sum() + (~np.isfinite(expected)).sum())}",
          flush=True)
    report["scoring"] = (s_best, s_median)
    total = best + gg_best + s_best
    report["arrays_total"] = total
    print(f"   fit both + score, best: {total:.2f} s", flush=True)
    return {"x": x, "t_x": t_x, "T": T, "params": params, "fit": fit, "fit_best": best}


# 2. lifetimes -----------------------------------------------------------------------------------


def lifetimes_worker(source: str, target: str) -> None:
    """Run in the lifetimes interpreter: fit BetaGeoFitter on the arrays, write what it found.

    Only numpy and lifetimes here (that interpreter has no Django and no project)."""
    began = time.perf_counter()
    from lifetimes import BetaGeoFitter, fitters

    imported = time.perf_counter() - began
    data = np.load(source)
    x, t_x, T = data["x"], data["t_x"], data["T"]
    # Count the optimiser's steps and time the Hessian lifetimes computes after the fit
    # (by wrapping the names its fitter module calls; nothing else changes).
    seen: dict = {}
    minimize, hessian = fitters.minimize, fitters.hessian

    def counted_minimize(*args, **kwargs):
        seen["method"] = kwargs.get("method") or "default (BFGS: no bounds)"
        seen["tol"] = kwargs.get("tol")
        began = time.perf_counter()
        result = minimize(*args, **kwargs)
        seen["minimize_seconds"] = time.perf_counter() - began
        seen.update(nit=int(result.nit), nfev=int(result.nfev), success=bool(result.success),
                    message=str(result.message))
        return result

    def timed_hessian(function):
        inner = hessian(function)

        def run(*args):
            began = time.perf_counter()
            value = inner(*args)
            seen["hessian_seconds"] = time.perf_counter() - began
            return value
        return run

    fitters.minimize, fitters.hessian = counted_minimize, timed_hessian
    fitter = BetaGeoFitter()  # penalizer_coef=0.0 by default: plain maximum likelihood
    began = time.perf_counter()
    error = None
    try:
        fitter.fit(x, t_x, T)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - began
    out = {"seconds": seconds, "import_seconds": imported, "error": error,
           "penalizer_coef": fitter.penalizer_coef, "customers": len(x), **seen,
           "versions": versions()}
    if error is None:
        out["params"] = {name: float(fitter.params_[name]) for name in NAMES}
        began = time.perf_counter()
        alive = fitter.conditional_probability_alive(x, t_x, T)
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(
            365.25 / 7, x, t_x, T)
        out["scoring_seconds"] = time.perf_counter() - began
        np.savez(target + ".npz", alive=np.asarray(alive, dtype=float),
                 expected=np.asarray(expected, dtype=float))
    Path(target).write_text(json.dumps(out))


def versions() -> dict:
    from importlib import metadata

    found = {}
    for name in ("lifetimes", "numpy", "scipy", "pandas", "autograd"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def run_lifetimes(python: str, x, t_x, T) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        source, target = str(Path(folder) / "in.npz"), str(Path(folder) / "out.json")
        np.savez(source, x=x, t_x=t_x, T=T)
        began = time.perf_counter()
        done = subprocess.run([python, str(Path(__file__).resolve()), "--lifetimes-worker",
                               source, target], capture_output=True, text=True, check=False,
                              timeout=LIFETIMES_SLOW * 3)
        wall = time.perf_counter() - began
        if done.returncode != 0 or not Path(target).exists():
            return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}",
                    "wall": wall}
        out = json.loads(Path(target).read_text())
        out["wall"] = wall
        if Path(target + ".npz").exists():
            predicted = np.load(target + ".npz")
            out["alive"], out["expected"] = predicted["alive"], predicted["expected"]
        return out


def three_figures(ours: float, theirs: float) -> bool:
    """Within half a unit of the third significant figure (of ours)."""
    unit = 10 ** (np.floor(np.log10(abs(ours))) - 2)
    return abs(ours - theirs) <= unit / 2


def lifetimes_part(options, arrays: dict, report) -> None:
    from retention.value import clv

    python = options.lifetimes_python
    x, t_x, T = arrays["x"], arrays["t_x"], arrays["T"]
    n = len(x)
    subsample = options.lifetimes_customers and options.lifetimes_customers < n
    print(f"\n2. lifetimes' BetaGeoFitter on the same arrays ({python})", flush=True)
    if subsample:
        pick = np.random.default_rng(options.seed + 1).choice(n, options.lifetimes_customers,
                                                              replace=False)
        pick.sort()
        x, t_x, T = x[pick], t_x[pick], T[pick]
        print(f"   on a random subsample of {len(x):,} of the {n:,} customers (--lifetimes-"
              f"customers); ours is refitted on the same subsample")
        best, _median, fit = timed(lambda: clv.BGNBD(x, t_x, T).fit(), options.repeat)
    else:
        best, fit = arrays["fit_best"], arrays["fit"]
    theirs = run_lifetimes(python, x, t_x, T)
    if theirs.get("error"):
        print(f"   lifetimes FAILED: {theirs['error']}")
        report["lifetimes"] = None
        return
    v = theirs["versions"]
    print(f"   lifetimes {v['lifetimes']} (numpy {v['numpy']}, scipy {v['scipy']}, pandas "
          f"{v['pandas']}, autograd {v['autograd']}); penalizer_coef {theirs['penalizer_coef']}, "
          f"optimiser {theirs.get('method')}, tol {theirs.get('tol')}")
    print(f"   fit: {theirs['seconds']:.2f} s (minimize {theirs.get('minimize_seconds', 0):.2f} s"
          f" in {theirs.get('nit')} iterations / {theirs.get('nfev')} evaluations, then the "
          f"Hessian {theirs.get('hessian_seconds', 0):.2f} s); importing lifetimes "
          f"{theirs['import_seconds']:.2f} s; scoring (P(alive), expected 12m) "
          f"{theirs.get('scoring_seconds', float('nan')):.2f} s; child process wall "
          f"{theirs['wall']:.1f} s", flush=True)
    ours = {name: fit.params[name] for name in NAMES}
    params = theirs["params"]
    model = clv.BGNBD(x, t_x, T)
    ll_theirs = -model.neg_log_likelihood(np.log([params[k] for k in NAMES]))[0]
    print(f"   {'':>6} {'ours':>14} {'lifetimes':>14} {'3 s.f.':>16} {'rel. diff':>10}")
    agree = True
    differences = {}
    for name in NAMES:
        a, b = ours[name], params[name]
        same = three_figures(a, b)
        agree &= same
        differences[name] = abs(a - b) / abs(a)
        print(f"   {name:>6} {a:14.8g} {b:14.8g} {f'{a:.3g} / {b:.3g}':>16} "
              f"{differences[name]:10.2e}{'' if same else '  <- differs'}")
    print(f"   log-likelihood (ours, at each's parameters): ours {fit.log_likelihood:,.4f}, "
          f"lifetimes' {ll_theirs:,.4f} (difference {fit.log_likelihood - ll_theirs:+.4g})")
    if "alive" in theirs:
        p = tuple(params[k] for k in NAMES)
        alive = clv.BGNBD.probability_alive(p, x, t_x, T)
        expected = clv.BGNBD.expected_purchases(p, x, t_x, T, clv.WEEKS_PER_YEAR)
        print(f"   predictions at lifetimes' parameters, ours vs theirs: max |diff| P(alive) "
              f"{np.nanmax(np.abs(alive - theirs['alive'])):.2e}, expected 12m "
              f"{np.nanmax(np.abs(expected - theirs['expected'])):.2e}")
    speedup = theirs["seconds"] / best
    print(f"   speed-up (lifetimes fit / our fit, {len(x):,} customers): "
          f"{theirs['seconds']:.2f} / {best:.2f} s = {speedup:.1f}x", flush=True)
    report["lifetimes"] = {"seconds": theirs["seconds"], "speedup": speedup, "agree": agree,
                           "customers": len(x), "ours": best, "subsample": bool(subsample),
                           "differences": differences}


# 3. End to end through PostgreSQL ---------------------------------------------------------------


def database_part(options, report) -> None:
    import metrics_data

    print(f"\n3. end to end through PostgreSQL ({options.database_url})", flush=True)
    if options.generate or not database_exists(options.database_url):
        began = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "metrics_data.py"),
                        "--customers", str(options.customers),
                        "--database-url", options.database_url], check=True)
        print(f"   data set written in {time.perf_counter() - began:.0f} s", flush=True)
    else:  # an existing data set: bring its schema up to date first
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True,
                       env={**os.environ, "DATABASE_URL": options.database_url, "DEBUG": "1"})
    metrics_data.setup_django(options.database_url)
    from django.conf import settings
    from django.db import connection, transaction

    from retention.value import predictions
    from retention.value.models import ClvFit, CustomerPrediction

    as_of = metrics_data.AS_OF
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM retention_customer),"
                       " (SELECT count(*) FROM retention_order), version()")
        customers, orders, version = cursor.fetchone()
    print(f"   {version.split(',')[0]}; {customers:,} customers, {orders:,} orders; as of "
          f"{as_of}", flush=True)
    # A previous run's predictions of the day would make the first night a replacement.
    CustomerPrediction.objects.filter(as_of=as_of).delete()
    ClvFit.objects.filter(as_of=as_of).delete()

    discount = settings.RETENTION_CLV_MONTHLY_DISCOUNT
    stages = {}
    began = time.perf_counter()
    inputs = predictions.read_inputs(as_of)
    stages["read_inputs"] = time.perf_counter() - began
    began = time.perf_counter()
    models = predictions.fit_models(inputs)
    stages["fit_models"] = time.perf_counter() - began
    began = time.perf_counter()
    scores = predictions.score(models, inputs, monthly_discount=discount)
    stages["score"] = time.perf_counter() - began

    class RolledBack(Exception):
        pass

    try:
        with transaction.atomic():
            record = predictions._record(models, as_of, ClvFit.Purpose.NIGHTLY, discount)
            began = time.perf_counter()
            predictions._store(record, inputs, scores)
            stages["_store"] = time.perf_counter() - began
            if connection.vendor == "postgresql":
                # What the commit would add: Django's foreign keys are DEFERRABLE INITIALLY
                # DEFERRED, so each stored row's check on the fit runs at the commit.
                began = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                stages["deferred FK checks (commit)"] = time.perf_counter() - began
            raise RolledBack
    except RolledBack:
        pass
    print(f"   {len(inputs):,} customers with a purchase, {models.repeat_customers:,} repeat "
          f"buyers; purchases by {models.purchases_method}, spend by {models.spend_method}"
          + (f" ({'; '.join(models.reasons)})" if models.reasons else ""))
    if models.bgnbd:
        print("   BG/NBD " + ", ".join(f"{k} {v:.4g}" for k, v in models.bgnbd.params.items())
              + f", {models.bgnbd.iterations} iterations")
    if models.gamma_gamma:
        print("   Gamma-Gamma " + ", ".join(f"{k} {v:.4g}"
                                          for k, v in models.gamma_gamma.params.items())
              + f", {models.gamma_gamma.iterations} iterations")
    for name, seconds in stages.items():
        print(f"   {name:>28}: {seconds:6.2f} s")
    print(f"   {'sum':>28}: {sum(stages.values()):6.2f} s  (the store in a transaction rolled "
          f"back afterwards)", flush=True)
    report["db_stages"] = stages
    del inputs, models, scores

    profiler = None
    if options.profile:
        import cProfile

        profiler = cProfile.Profile()
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    record = predictions.fit(as_of, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    if profiler:
        profiler.disable()
    first = time.perf_counter() - began
    stored = CustomerPrediction.objects.filter(as_of=as_of).count()
    print(f"   predictions.fit(as_of, purpose=NIGHTLY, store=True), first night: {first:6.2f} s "
          f"(record.seconds {record.seconds}); {stored:,} predictions stored", flush=True)
    began = time.perf_counter()
    predictions.fit(as_of, purpose=ClvFit.Purpose.NIGHTLY, store=True)
    again = time.perf_counter() - began
    print(f"   the same night again (its {stored:,} rows deleted and rewritten): {again:6.2f} s",
          flush=True)
    report["db_first"], report["db_again"], report["db_customers"] = first, again, stored
    if profiler:
        import io
        import pstats

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print("\n   cProfile of the first night (cumulative, top 25):")
        print("\n".join("   " + line for line in out.getvalue().splitlines()[:60]))
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print("\n   cProfile of the first night (own time, top 15):")
        print("\n".join("   " + line for line in out.getvalue().splitlines()[:40]))


# Summary ----------------------------------------------------------------------------------------


def summary(options, report, header: list[str]) -> None:
    print("\n" + "=" * 96)
    print("SUMMARY")
    for line in header:
        print(f"  {line}")
    print(f"  at the end: {load()}")
    rows = []
    if "bgnbd_fit" in report:
        n = f"{options.customers:,}"
        rows += [(f"BG/NBD fit ({n} simulated)", *report["bgnbd_fit"]),
                 ("Gamma-Gamma fit (its repeat buyers)", *report["gamma_gamma_fit"]),
                 (f"scoring {n} (P alive, E 12m, discounted, spend)", *report["scoring"]),
                 ("arrays: fit both + score (best)", report["arrays_total"], None)]
    lt = report.get("lifetimes")
    if lt:
        rows += [(f"lifetimes BetaGeoFitter ({lt['customers']:,})", lt["seconds"], None),
                 (f"ours BG/NBD on the same ({lt['customers']:,})", lt["ours"], None)]
    for name, seconds in report.get("db_stages", {}).items():
        rows.append((f"db: {name}", seconds, None))
    if "db_first" in report:
        rows += [(f"db: predictions.fit NIGHTLY store ({report['db_customers']:,})",
                  report["db_first"], None),
                 ("db: the same night again (replace)", report["db_again"], None)]
    print(f"  {'stage':<52} {'best s':>9} {'median s':>9}")
    for name, best, median in rows:
        print(f"  {name:<52} {best:9.2f} {'' if median is None else f'{median:9.2f}':>9}")
    print()
    checks = []
    if lt:
        worst = max(lt["differences"].values())
        checks.append((f"same parameters as lifetimes to 3 s.f. (max rel. diff {worst:.1e})",
                       lt["agree"]))
        subsample = ", subsample" if lt["subsample"] else ""
        text = (f"ours >= {SPEEDUP_TARGET:.0f}x faster than lifetimes "
                f"({lt['speedup']:.1f}x{subsample})")
        checks.append((text, lt["speedup"] >= SPEEDUP_TARGET))
    elif lt is None and not options.skip_lifetimes:
        checks.append(("lifetimes ran", False))
    if "arrays_total" in report:
        text = (f"ours under {SECONDS_TARGET:.0f} s: fit both + score {options.customers:,} "
                f"(arrays, {report['arrays_total']:.1f} s)")
        checks.append((text, report["arrays_total"] < SECONDS_TARGET))
    if "db_first" in report:
        text = (f"ours under {SECONDS_TARGET:.0f} s: predictions.fit end to end, "
                f"{report['db_customers']:,} customers ({report['db_first']:.1f} s)")
        checks.append((text, report["db_first"] < SECONDS_TARGET))
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    print("=" * 96, flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--lifetimes-worker":
        lifetimes_worker(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20260601)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each of our timings.")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--generate", action="store_true",
                        help="Write the database's data set afresh (drops the database).")
    parser.add_argument("--skip-db", action="store_true")
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument("--lifetimes-python", default=os.environ.get("LIFETIMES_PYTHON",
                                                                     sys.executable),
                        help="An interpreter with lifetimes installed (default: this one).")
    parser.add_argument("--lifetimes-customers", type=int, default=0,
                        help="Fit lifetimes (and ours again) on a random subsample of this "
                             "many customers, when it is too slow on all of them.")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the end-to-end predictions.fit.")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention.settings")

    header = machine()
    for line in header:
        print(line)
    report: dict = {}
    arrays = arrays_part(options, report)
    if not options.skip_lifetimes:
        lifetimes_part(options, arrays, report)
    del arrays
    if not options.skip_db:
        database_part(options, report)
    summary(options, report, header)


if __name__ == "__main__":
    main()
