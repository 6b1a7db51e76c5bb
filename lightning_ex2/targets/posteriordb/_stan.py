"""Running Stan (PyStan 3) on a posteriordb posterior, in this interpreter or another one.

PyStan is not a dependency of this package: it often lives in its own virtual
environment. :func:`run_stan` sends a request (the Stan program, its data and a task)
to ``python _stan.py REQUEST.json RESULT.json`` run by the interpreter that has PyStan
(``stan_python``), or runs it here when ``import stan`` works. This file imports
nothing from the package, so that interpreter needs only PyStan and NumPy.

Tasks:

* ``log_prob``: Stan's ``log_prob`` and ``grad_log_prob`` (with the log-Jacobian,
  constants dropped) at unconstrained points ``x``;
* ``nuts``: Stan's NUTS (diagonal metric, Stan's default adaptation), ``chains``
  chains run in parallel processes by httpstan (one per core), ``warmup`` + ``draws``
  iterations; returns the draws per chain and name, the leapfrog steps of every
  iteration (warm-up included) and the wall time of the sampling call.

Stan compiles each program once (httpstan caches the build by program code under
``~/.cache/httpstan``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def versions() -> str:
    """PyStan's and httpstan's versions."""
    from importlib.metadata import version

    return f"pystan {version('pystan')}, httpstan {version('httpstan')}"


def _build(request: dict[str, Any]) -> Any:
    import aiohttp.client
    import stan

    # PyStan talks to httpstan over aiohttp, whose default 5-minute limit ends a
    # compilation on a busy machine (and leaves a broken cache entry): no limit here
    aiohttp.client.DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30)

    return stan.build(request["code"], data=request["data"], random_seed=request.get("seed", 1))


def log_prob_task(request: dict[str, Any]) -> dict[str, Any]:
    model = _build(request)
    points = [[float(v) for v in x] for x in request["x"]]
    return {
        "lp": [float(model.log_prob(x)) for x in points],
        "grad": [[float(g) for g in model.grad_log_prob(x)] for x in points],
        "stan": versions(),
    }


def nuts_task(request: dict[str, Any]) -> dict[str, Any]:
    model = _build(request)
    chains, warmup, draws = request["chains"], request["warmup"], request["draws"]
    start = time.perf_counter()
    fit = model.sample(num_chains=chains, num_warmup=warmup, num_samples=draws, save_warmup=True)
    wall = time.perf_counter() - start

    def per_chain(values: Any) -> list[list[list[float]]]:
        # fit[name] is (*shape, iterations * chains) with chains interleaved
        flat = values.reshape(-1, values.shape[-1])
        return [flat[:, c::chains].T.tolist() for c in range(chains)]

    out: dict[str, Any] = {"draws": {}, "wall_seconds": wall, "stan": versions()}
    for name in fit.param_names:
        shape = list(fit.dims[fit.param_names.index(name)])
        out["draws"][name] = {"shape": shape, "values": per_chain(fit[name])}
    out["n_leapfrog"] = per_chain(fit["n_leapfrog__"])  # [chain][iteration][1]
    out["warmup"] = warmup
    return out


TASKS = {"log_prob": log_prob_task, "nuts": nuts_task}


def has_stan() -> bool:
    try:
        import stan  # noqa: F401
    except ImportError:
        return False
    return True


def run_stan(request: dict[str, Any], stan_python: str | None = None) -> dict[str, Any]:
    """Run ``request`` (``task``, ``code``, ``data`` and the task's fields) with PyStan:
    here when ``stan_python`` is ``None`` and ``import stan`` works, else in a
    subprocess of ``stan_python`` (an interpreter with PyStan)."""
    if stan_python is None:
        if has_stan():
            return TASKS[request["task"]](request)
        raise RuntimeError(
            "PyStan is not importable here: pass the Python interpreter of an environment "
            "with PyStan 3 (pip install pystan), e.g. --stan-python /path/to/venv/bin/python"
        )
    with tempfile.TemporaryDirectory() as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run(
            [stan_python, __file__, str(req), str(res)], env=env, capture_output=True, text=True
        )
        if proc.returncode != 0 or not res.is_file():
            raise RuntimeError(f"Stan ({stan_python}) failed:\n{proc.stderr[-3000:]}")
        return json.loads(res.read_text())


if __name__ == "__main__":
    request = json.loads(Path(sys.argv[1]).read_text())
    result = TASKS[request["task"]](request)
    Path(sys.argv[2]).write_text(json.dumps(result))
