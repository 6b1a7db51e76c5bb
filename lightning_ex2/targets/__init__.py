"""Sampling targets: ``nn.Module`` s with ``dim`` and ``log_prob(x [..., D]) -> [...]``.

:class:`Target` is the contract (:class:`lightning_ex2.protocols.Target`: the required
members and the optional hooks); the built-in targets derive from :class:`TargetBase`.

Targets with an exact ``sample(n, generator=None) -> [n, D]`` (Gaussian, mixtures,
banana, funnel) serve to evaluate samplers; :class:`BayesianLogisticRegression`
is a real-data posterior without one, like the posteriordb ports
(:mod:`~lightning_ex2.targets.posteriordb`, checked against Stan); :class:`GANLatentTarget` is a GAN's latent space
seen as an energy-based model (:mod:`~lightning_ex2.gan.hardness`: how hard it is);
:class:`PyroModel` makes any plate-annotated Pyro model a batched target.
"""

from lightning_ex2.protocols import Target

from . import posteriordb as posteriordb  # lx.targets.posteriordb (ports import on first use)
from .banana import Banana
from .base import TargetBase, check_target, has_sampler, target_dim
from .funnel import Funnel
from .gaussian import Gaussian
from .logistic import DATASETS, BayesianLogisticRegression
from .mixture import GaussianMixture, GridMixture, SymmetricMixture
from .pyro_model import PyroModel, PyroModelError  # pyro-ppl imported on first use
from .pyro_program import PyroProgram

__all__ = [
    "DATASETS",
    "Banana",
    "BayesianLogisticRegression",
    "Funnel",
    "Gaussian",
    "GaussianMixture",
    "GridMixture",
    "PyroModel",
    "PyroModelError",
    "PyroProgram",
    "SymmetricMixture",
    "Target",
    "TargetBase",
    "check_target",
    "has_sampler",
    "target_dim",
]
