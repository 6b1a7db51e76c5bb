"""Checks run before any MCMC step, so that a mistake costs seconds, not a run (plain
torch: the Lightning trainer runs them in :mod:`lightning_ex2.lightning.preflight`): a
checkpoint against the configured model (:func:`model_spec`, :func:`check_checkpoint`;
a class's module is not part of a checkpoint's identity), the initial points and
``log_prob`` (:func:`check_model_data`), and an out-of-memory error rephrased with the
run's sizes (:func:`memory_message`)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lightning_ex2.errors import UserError
from lightning_ex2.trust import DamagedFile, load_torch

#: key of the model spec in a checkpoint
SPEC_KEY = "lightning_ex2_spec"
#: state_dict key of the chains' positions ``[n_chains, D]`` (MCMCSampler.state.x)
CHAIN_POSITIONS = "state.x"
_PLAIN = (bool, int, float, str, type(None))
#: settings added after checkpoints were written without them, with the value those
#: checkpoints' models had (a spec entry absent from a checkpoint compares as this value)
SPEC_DEFAULTS = {"target.beta": repr(1.0), "target.beta_rule": repr("fixed")}


class SamplerParts(NamedTuple):
    """What the checks read of a sampler module (see :func:`sampler_parts`)."""

    target: nn.Module
    kernel: nn.Module
    dim: int
    n_chains: int
    dtype: torch.dtype  # the chains'
    uses_grad: bool  # the kernel uses grad log pi
    n_particles: int | None  # i-SIR's particles per chain (None: no global move)


@runtime_checkable
class ChainSampler(Protocol):
    """A module with chains to check: :class:`~lightning_ex2.lightning.MCMCSampler` and
    its subclasses (a protocol, so that the checks need no Lightning)."""

    target: nn.Module
    kernel: nn.Module
    dim: int
    n_chains: int
    chain_x: Tensor


def sampler_parts(model: object) -> SamplerParts | None:
    """The parts of a sampler module (:class:`ChainSampler`) the checks read; ``None``
    for other modules (e.g. GAN training), which have no chains to check."""
    if not isinstance(model, ChainSampler):
        return None
    kernel = model.kernel
    particles = next((m.n_particles for m in kernel.modules() if "n_particles" in vars(m)), None)
    return SamplerParts(
        model.target, kernel, model.dim, model.n_chains, model.chain_x.dtype,
        bool(kernel.uses_grad), particles,
    )  # fmt: skip


@runtime_checkable
class ChecksDim(Protocol):
    """Data whose initial points can be checked against the target's dim before a run
    (:meth:`lightning_ex2.lightning.ChainDataModule.check_dim`)."""

    def check_dim(self, dim: int) -> None: ...


@runtime_checkable
class ChainBatches(Protocol):
    """Data that move ``chains_per_batch`` chains per step (``None``: all)."""

    chains_per_batch: int | None


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    return isinstance(value, tuple | list) and all(isinstance(v, _PLAIN) for v in value)


def digest(t: Tensor) -> str:
    """A short content hash of a tensor (shape, dtype and values)."""
    data = t.detach().cpu().contiguous().reshape(-1)
    h = hashlib.sha256(f"{tuple(data.shape)}{data.dtype}".encode())
    h.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()[:16]


def model_spec(model: nn.Module) -> dict[str, str]:
    """``{entry: value}`` describing the parts of ``model`` a checkpoint must match.

    For every child module (``target``, ``kernel`` and what they hold, e.g.
    ``kernel.proposal``): its class name (``__qualname__``, not the module it lives in)
    and its public plain settings (numbers,
    strings, tuples of them); and a digest of each of :func:`setting_tensors` (the
    target's tensors, the kernel's buffers such as a proposal's ``scale``), as the
    config built them.
    """
    spec: dict[str, str] = {}
    for child_name, child in model.named_children():
        for name, m in child.named_modules(prefix=child_name):
            spec[name] = type(m).__qualname__
            for key, value in sorted(vars(m).items()):
                if key.startswith("_") or key == "training" or not _plain(value):
                    continue
                spec[f"{name}.{key}"] = repr(value)
    for name, t in setting_tensors(model).items():
        spec[name] = f"<tensor {digest(t)}>"
    return spec


def setting_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The tensors that are settings, by state_dict key: every buffer and parameter of
    ``model.target`` (a target is fixed), and every buffer of ``model.kernel`` and what
    it holds (e.g. ``kernel.isir.proposal.scale``, a flow's masks). A kernel's
    parameters (a flow's weights) are trained state, not settings."""
    tensors: dict[str, Tensor] = {}
    parts = sampler_parts(model)
    if parts is not None:
        tensors.update(parts.target.named_buffers(prefix="target"))
        tensors.update(parts.target.named_parameters(prefix="target"))
        tensors.update(parts.kernel.named_buffers(prefix="kernel"))
    return tensors


def _values(t: Any) -> str | None:
    """A small tensor's values for a message (``None`` when large or not a tensor)."""
    if not isinstance(t, Tensor) or t.numel() > 8:
        return None
    return repr(t.detach().cpu().tolist())


def load_checkpoint(path: str | Path, mmap: bool = True, trust: bool = False) -> dict[str, Any]:
    """Read a checkpoint on the CPU (memory-mapped unless ``mmap=False``: a checkpoint
    handed on to Lightning is read into memory, as Lightning would read it) with
    ``weights_only=True`` (:func:`lightning_ex2.trust.load_torch`); one that needs full
    unpickling only with ``trust`` (``--trust_checkpoint true``). A checkpoint whose
    tensors hold NaN (chains, a flow's weights, a step size) is refused.

    Raises:
        UserError: naming the file: missing, truncated, damaged, needing full unpickling
            without ``trust``, not a Lightning checkpoint, or holding NaN.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"--ckpt_path {path} {what}; give the path of a .ckpt file")
    try:
        ckpt = load_torch(path, trust=trust, mmap=mmap, what=f"--ckpt_path {path}")
    except DamagedFile as err:
        raise UserError(
            f"{err}; give another checkpoint, e.g. the run's checkpoints/last.ckpt"
        ) from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise UserError(f"--ckpt_path {path} is not a Lightning checkpoint (no state_dict)")
    nan = nan_tensors(ckpt["state_dict"])
    if nan:
        raise UserError(
            f"--ckpt_path {path} holds NaN in {len(nan)} tensor(s) ({_examples(nan)}): the run "
            "that wrote it diverged; resume from an earlier checkpoint or start a new run"
        )
    return ckpt


def nan_tensors(state: dict[str, Any]) -> list[str]:
    """Keys of the floating-point tensors of ``state`` that hold a NaN (sorted)."""
    return sorted(
        k
        for k, v in state.items()
        if isinstance(v, Tensor) and v.is_floating_point() and bool(torch.isnan(v).any())
    )


def _shape(t: Any) -> str:
    return "[" + ", ".join(str(s) for s in (t.shape if isinstance(t, Tensor) else ())) + "]"


def _examples(names: list[str], limit: int = 3) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def shape_problems(model: nn.Module, state: dict[str, Any]) -> list[str]:
    """Short descriptions of how ``state`` (a checkpoint's state_dict) does not fit ``model``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = sorted(
        k
        for k in set(own) & set(state)
        if isinstance(state[k], Tensor) and tuple(state[k].shape) != tuple(own[k].shape)
    )
    problems = []
    if reshaped:
        details = [f"{k} {_shape(state[k])} vs {_shape(own[k])}" for k in reshaped]
        problems.append(
            f"{len(reshaped)} tensor(s) of other shapes (checkpoint vs config: "
            f"{_examples(details)})"
        )
        if CHAIN_POSITIONS in reshaped:
            problems.append(
                "the chains differ (data.n_chains or the target's dim): checkpoint "
                f"{_shape(state[CHAIN_POSITIONS])}, config {_shape(own[CHAIN_POSITIONS])}"
            )
    if missing:
        problems.append(f"{len(missing)} tensor(s) the checkpoint lacks ({_examples(missing)})")
    if unexpected:
        problems.append(
            f"{len(unexpected)} tensor(s) the config's model lacks ({_examples(unexpected)})"
        )
    return problems


def same_class(recorded: str, name: str) -> bool:
    """Whether a checkpoint's class entry ``recorded`` names the class ``name`` (a
    ``__qualname__``); checkpoints of earlier versions recorded ``module.qualname``,
    whose module part is ignored."""
    return recorded == name or recorded.endswith(f".{name}")


def spec_differences(model: nn.Module, ckpt: dict[str, Any], spec: dict[str, str]) -> list[str]:
    """Entries of ``spec`` (the config's model) that differ from the checkpoint's."""
    stored = ckpt.get(SPEC_KEY)
    out: dict[str, str] = {}
    state = ckpt["state_dict"]
    tensors = setting_tensors(model)
    classes = {n for c, child in model.named_children() for n, _ in child.named_modules(prefix=c)}

    def differ(key: str) -> str:
        theirs, ours = _values(state.get(key)), _values(tensors.get(key))
        if theirs is not None and ours is not None:
            return f"{key}: checkpoint {theirs}, config {ours}"
        return f"{key}: values differ"

    if isinstance(stored, dict):
        for key in sorted(set(stored) | set(spec)):
            a, b = stored.get(key, "<absent>"), spec.get(key, "<absent>")
            if a == "<absent>" and key in SPEC_DEFAULTS:
                a = SPEC_DEFAULTS[key]  # written before the setting existed
            if key in classes and same_class(a, b):
                continue  # the same class, wherever it lived when the checkpoint was written
            if a == b or (a == "<absent>" and key in tensors):
                continue  # a tensor an older checkpoint did not record: compared below
            if a.startswith("<tensor") and b.startswith("<tensor"):
                out[key] = differ(key)
            else:
                out[key] = f"{key}: checkpoint {a}, config {b}"
    # the setting tensors themselves (also in checkpoints without a spec, or whose spec
    # predates kernel buffers); the target's persistent ones always
    recorded = set(stored) if isinstance(stored, dict) else set()
    own = model.state_dict()
    for key in sorted(tensors):
        if key not in state or key not in own or key in out:
            continue
        if key.startswith("kernel.") and key in recorded:
            continue  # compared as recorded at construction (the state may have moved)
        theirs = state[key]
        if tuple(theirs.shape) != tuple(own[key].shape):
            continue  # reported as a shape problem
        if not torch.equal(theirs.to(own[key].dtype), own[key].cpu()):
            out[key] = differ(key)
    return list(out.values())


def check_checkpoint(
    model: nn.Module,
    path: str | Path,
    override: bool = False,
    mmap: bool = True,
    trust: bool = False,
    spec: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Refuse a checkpoint that does not belong to ``model`` (as the config built it;
    ``spec``: its :func:`model_spec`, when the caller has it already).

    Returns the checkpoint and the differences that ``override`` let through.

    Raises:
        UserError: the file is missing or unreadable; tensors of other shapes (a
            short summary, e.g. ``data.n_chains``); or, unless ``override``, a
            target/kernel/proposal that differs from the checkpoint's, naming the
            entries (e.g. ``target.loc: values differ``).
    """
    ckpt = load_checkpoint(path, mmap=mmap, trust=trust)
    problems = shape_problems(model, ckpt["state_dict"])
    if problems:
        raise UserError(
            f"--ckpt_path {path} does not fit the configured model: {'; '.join(problems)}; "
            "use the config the checkpoint was written with"
        )
    diffs = spec_differences(model, ckpt, model_spec(model) if spec is None else spec)
    if diffs and not override:
        raise UserError(
            f"--ckpt_path {path} was written for another model than the config describes: "
            f"{_examples(diffs, 6)}; use the config of that run, or pass --override_ckpt true "
            "to run the config's model with the checkpoint's state"
        )
    return ckpt, diffs


def _ndim_error(x: Tensor, out: Any, name: str) -> str | None:
    if not isinstance(out, Tensor):
        return f"{name}.log_prob(x) must return a tensor, got {type(out).__name__}"
    if tuple(out.shape) != tuple(x.shape[:-1]):
        return (
            f"{name}.log_prob(x) must return shape [batch] for x of shape [batch, dim]: "
            f"for x {_shape(x)} it returned {_shape(out)}"
        )
    return None


def check_model_data(model: nn.Module, datamodule: Any) -> None:
    """Initial points of the configured dim; a ``log_prob`` of the documented shape and
    of the points' dtype, differentiable in ``x`` when the kernel uses gradients.

    Raises:
        UserError: naming ``data.init_loc``/``data.init_path`` and the target's dim,
            or the target class and the shapes ``log_prob`` took and returned.
    """
    parts = sampler_parts(model)
    if parts is None:
        return  # not a sampler (e.g. GAN training)
    target, dim = parts.target, parts.dim
    if isinstance(datamodule, ChecksDim):
        try:
            datamodule.check_dim(dim)
        except (ValueError, FileNotFoundError) as err:
            raise UserError(str(err)) from err
    name = f"model.target ({type(target).__name__})"
    x = torch.zeros(2, dim, dtype=parts.dtype)
    try:
        with torch.no_grad():
            out = target.log_prob(x)
    except Exception as err:  # a user's target: say where it failed
        raise UserError(
            f"{name}.log_prob failed on x of shape {_shape(x)}: {type(err).__name__}: {err}"
        ) from err
    problem = _ndim_error(x, out, name)
    if problem:
        raise UserError(problem)
    if out.dtype != x.dtype:
        raise UserError(
            f"{name}.log_prob(x) must return x's dtype: for x of dtype "
            f"{str(x.dtype).removeprefix('torch.')} it returned "
            f"{str(out.dtype).removeprefix('torch.')}; compute it in x's dtype "
            "(e.g. no .double()/.long(), tensors created with dtype=x.dtype)"
        )
    if parts.uses_grad:
        from lightning_ex2.kernels.base import log_prob_and_grad

        try:
            log_prob_and_grad(target, x)
        except TypeError as err:  # not differentiable: the kernel's own message
            raise UserError(f"model.target: {err}") from err


def is_out_of_memory(err: BaseException) -> bool:
    """A CUDA/MPS/CPU allocation failure."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError | MemoryError) and (
        isinstance(err, MemoryError) or "can't allocate memory" in text or "out of memory" in text
    )


def _requested_bytes(err: BaseException) -> str:
    found = re.search(r"allocate (?:memory: you tried to allocate )?(\d+) bytes", str(err))
    if found is None:
        found = re.search(r"Tried to allocate ([\d.]+ [KMGT]iB)", str(err))
        return f" (tried to allocate {found.group(1)})" if found else ""
    return f" (tried to allocate {int(found.group(1)) / 2**30:.3g} GiB)"


def memory_message(
    err: BaseException,
    model: Any = None,
    datamodule: Any = None,
    n_draws: int | None = None,
    chains: int | None = None,
) -> str:
    """One line: what did not fit, the sizes ``C x N x D`` and the options to lower.

    Args:
        err: the allocation error.
        model: the sampler (its ``n_chains``, ``dim`` and kernel's ``n_particles``).
        datamodule: the chains (its ``chains_per_batch``).
        n_draws: draws kept per chain (``sample``: ``n_steps // thin``).
        chains: number of chains when there is no model yet.
    """
    parts = sampler_parts(model)
    dim = particles = None
    if parts is not None:
        chains, dim, particles = parts.n_chains, parts.dim, parts.n_particles
    per_batch = (
        datamodule.chains_per_batch if isinstance(datamodule, ChainBatches) else None
    ) or chains
    sizes = f"C={per_batch} chains per step (of {chains})"
    if particles is not None:
        sizes += f" x N={particles} particles"
    sizes += f" x D={dim if dim is not None else '?'}"
    options = ["data.chains_per_batch (chains moved per step)"]
    if particles is not None:
        options.append("model.init_args.kernel.init_args.n_particles")
    options.append("data.n_chains")
    if n_draws is not None:
        sizes += f", keeping {n_draws} draws per chain"
        options.append("--n_steps or a larger --thin (draws are kept on the device)")
    return (
        f"out of memory{_requested_bytes(err)} with {sizes}; lower {', '.join(options)}, "
        "or use a device with more memory"
    )
