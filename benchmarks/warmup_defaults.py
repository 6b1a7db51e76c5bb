"""Old warm-up defaults vs the new ones on hard synthetic cases (mean error in sd, R-hat, ESS).

``OLD=1`` builds the kernels with the former defaults spelled out (one shared step size);
run it once on a checkout of the former code for the "old" row and once here::

    OMP_NUM_THREADS=1 python benchmarks/warmup_defaults.py
"""

import math
import sys
import warnings

import torch

import lightning_ex2 as lx

sys.path.insert(0, ".")
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.kernels.test_warmup import SteepStart, _correlated, steep_starts

torch.set_num_threads(1)
warnings.simplefilter("ignore")
old = {"target_accept": 0.574, "per_chain_step_size": False, "mass_matrix": "diagonal"}
cases = {
    "steep-start 4-D (4/64 chains 9 sd out)": (SteepStart(), steep_starts(64, 4)),
    "funnel 10-D": (lx.targets.Funnel(10), None),
    "correlated Gaussian 20-D (cond 1e3)": (_correlated().float(), None),
}
for name, (target, init) in cases.items():
    for label, kernel in (
        ("old MALA(diagonal, shared)", lx.MALA(**old)),
        ("new MALA()", lx.MALA()),
    ):
        if label.startswith("new") != (lx.MALA().mass_matrix == "diagonal"):
            continue  # the former code: its defaults (identity) are not the new ones
        run = lx.sample(target, kernel, n_chains=64, n_steps=500, burn_in=500, init=init,
                        seed=0, progress=False, check_convergence=False)  # fmt: skip
        x = run.samples.double().reshape(-1, run.samples.shape[-1])
        if isinstance(target, SteepStart):
            mean, sd = target.mean.double(), target.sd.double()
        elif isinstance(target, lx.targets.Funnel):
            mean, sd = torch.zeros(10, dtype=torch.float64), None
            sd = torch.tensor([3.0] + [math.sqrt(math.exp(4.5))] * 9, dtype=torch.float64)
        else:
            cov = (target.scale_tril @ target.scale_tril.T).double()
            mean, sd = torch.zeros(20, dtype=torch.float64), cov.diagonal().sqrt()
        err = ((x.mean(0) - mean) / sd).abs().max()
        stuck = int((run.info["accept_local"] < 0.01).sum())
        print(
            f"{name:40s} {label:28s} max|mean err|/sd {err:.3f}  R-hat {run.rhat().max():.3f}"
            f"  min ESS {run.ess().min():7.0f}  stuck {stuck}",
            flush=True,
        )
