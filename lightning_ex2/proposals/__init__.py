"""Global proposals for i-SIR: ``sample_and_log_prob``, ``log_prob``, ``standardize``."""

from lightning_ex2.proposals.flows import FLOW_TYPES, FlowProposal, build_flow_transform
from lightning_ex2.proposals.gaussian import GaussianProposal, standard_normal_log_prob
from lightning_ex2.proposals.training import FlowTrainer, FlowTraining

__all__ = [
    "FLOW_TYPES",
    "FlowProposal",
    "FlowTrainer",
    "FlowTraining",
    "GaussianProposal",
    "build_flow_transform",
    "standard_normal_log_prob",
]
