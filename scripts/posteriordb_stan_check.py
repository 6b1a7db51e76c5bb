"""Check every posteriordb port against Stan itself: log density (up to a constant) and gradient.

For each port (``lightning_ex2.targets.posteriordb.ports()``, or ``--names``) the script
draws ``--points`` unconstrained points from N(0, I) and ``--ref-points`` of
posteriordb's reference draws mapped to Stan's unconstrained space (seeded by the
posterior's name), asks Stan for ``log_prob`` and ``grad_log_prob`` there (PyStan 3,
with the log-Jacobian; in this interpreter or in ``--stan-python``'s), and reports

* ``lp error``: max over the points of ``|lp - lp_stan - c| / max(1, |lp_stan|)``, ``c``
  the difference at the point of smallest ``|lp_stan|`` (the port drops other constants
  than Stan);
* ``grad error``: max over the points of ``|g - g_stan|_inf / max(1, |g_stan|_inf)``.

``--write`` records Stan's values in ``tests/fixtures/posteriordb/stan/<name>.json``
(``x``, ``lp``, ``grad``, Stan's versions, a stamp), which CI compares every port with
(``tests/targets/test_posteriordb.py``). ``--recorded`` compares with those files
instead of running Stan (no PyStan needed: e.g. for posteriors whose data do not
ship with the tests).

    python scripts/posteriordb_stan_check.py --posteriordb ~/posteriordb \\
        --stan-python ~/venv-stan/bin/python --write
    python scripts/posteriordb_stan_check.py --posteriordb ~/posteriordb --recorded
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from lightning_ex2.output.files import save_text
from lightning_ex2.stamp import Stamp
from lightning_ex2.targets import posteriordb as pdb
from lightning_ex2.targets.posteriordb._stan import run_stan

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "tests" / "fixtures" / "posteriordb" / "stan"


def points(target: pdb.PosteriorDBTarget, posteriordb: str, n: int, n_ref: int) -> np.ndarray:
    """``n`` N(0, I) points and ``n_ref`` reference draws, unconstrained ``[n + n_ref, D]``."""
    rng = np.random.default_rng(zlib.crc32(target.name.encode()))
    x = rng.standard_normal((n, target.dim))
    if n_ref:
        try:
            ref = pdb.reference_array(target, posteriordb)
        except FileNotFoundError:
            return x
        flat = ref.reshape(-1, ref.shape[-1])
        pick = flat[rng.choice(len(flat), size=n_ref, replace=False)]
        unconstrained = target.unconstrain(target.unflatten(torch.as_tensor(pick)))
        x = np.concatenate([x, unconstrained.numpy()])
    return x


def port_values(target: pdb.PosteriorDBTarget, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The port's log density and gradient at ``x [n, D]`` (float64)."""
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    lp = target.log_prob(xt)
    (grad,) = torch.autograd.grad(lp.sum(), xt)
    return lp.detach().numpy(), grad.numpy()


def errors(
    lp: np.ndarray, grad: np.ndarray, lp_stan: np.ndarray, grad_stan: np.ndarray
) -> tuple[float, float, float]:
    """(lp error, grad error, the constant c): see the module docstring."""
    diff = lp - lp_stan
    c = diff[np.argmin(np.abs(lp_stan))]
    lp_err = np.max(np.abs(diff - c) / np.maximum(1.0, np.abs(lp_stan)))
    scale = np.maximum(1.0, np.abs(grad_stan).max(-1))
    grad_err = np.max(np.abs(grad - grad_stan).max(-1) / scale)
    return float(lp_err), float(grad_err), float(c)


def main(argv: list[str] | None = None) -> int:
    stamp = Stamp()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posteriordb", required=True, help="a posteriordb clone")
    parser.add_argument("--names", default="", help="comma-separated posteriors (default: all)")
    parser.add_argument("--points", type=int, default=8, help="N(0, I) points per posterior")
    parser.add_argument("--ref-points", type=int, default=4, help="reference draws per posterior")
    parser.add_argument("--stan-python", default=None, help="a Python with PyStan 3")
    parser.add_argument("--write", action="store_true", help="record Stan's values for CI")
    parser.add_argument("--recorded", action="store_true", help="compare with the records")
    parser.add_argument("--out", type=Path, default=RECORDS)
    parser.add_argument("--tol", type=float, default=1e-8, help="failure threshold")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = [n for n in args.names.split(",") if n] or list(pdb.ports())
    failed = []
    print(f"{'posterior':45s} {'D':>3s} {'pts':>4s} {'lp error':>9s} {'grad error':>10s} {'s':>5s}")
    for name in names:
        start = time.perf_counter()
        target = pdb.load(name, args.posteriordb, dtype=torch.float64)
        if args.recorded:
            record = json.loads((args.out / f"{name}.json").read_text())
            x = np.asarray(record["x"])
            lp_stan, grad_stan = np.asarray(record["lp"]), np.asarray(record["grad"])
        else:
            x = points(target, args.posteriordb, args.points, args.ref_points)
            result = run_stan(
                {
                    "task": "log_prob",
                    "code": pdb.stan_code(name, args.posteriordb),
                    "data": pdb.load_data(name, args.posteriordb),
                    "x": x.tolist(),
                },
                args.stan_python,
            )
            lp_stan, grad_stan = np.asarray(result["lp"]), np.asarray(result["grad"])
        lp, grad = port_values(target, x)
        lp_err, grad_err, _ = errors(lp, grad, lp_stan, grad_stan)
        wall = time.perf_counter() - start
        print(f"{name:45s} {target.dim:3d} {len(x):4d} {lp_err:9.1e} {grad_err:10.1e} {wall:5.0f}")
        if not (lp_err < args.tol and grad_err < args.tol):
            failed.append(name)
        if args.write and not args.recorded:
            f = stamp.fields()
            record = {
                "posterior": name,
                "x": x.tolist(),
                "lp": lp_stan.tolist(),
                "grad": grad_stan.tolist(),
                "stan": result["stan"],
                "stamp": {k: f[k] for k in ("command", "commit", "date")},
            }
            args.out.mkdir(parents=True, exist_ok=True)
            save_text(args.out / f"{name}.json", json.dumps(record, indent=1) + "\n")
    if failed:
        print(f"differ from Stan by more than {args.tol:g}: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
