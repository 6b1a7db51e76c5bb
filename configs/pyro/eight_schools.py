"""The eight schools (Rubin 1981; Gelman et al., BDA3 5.5), non-centred, as a Pyro model.

Sampled from the command line by ``configs/pyro/eight_schools_hmc.yaml`` (the data in
``eight_schools.json``); the same model is posteriordb's ``eight_schools_noncentered``.
Written to broadcast over a leading batch dimension (elementwise arithmetic, the
schools in a plate), so all chains are evaluated in one pass.
"""

import pyro
import pyro.distributions as dist
import torch


def model(J: int, y: torch.Tensor, sigma: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", J):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(mu + tau * theta_trans, sigma), obs=y)
