"""The ``lightning-ex2`` command: LightningCLI with ``fit``, ``validate``, ``test``
and ``sample`` (Lightning's ``predict`` with an output set; ``predict`` itself, which
wrote nothing, is not a command).

Mistakes end with one line and exit status 2, stop signals with a clean stop and
status 143/130 (see :func:`main`). Examples::

    lightning-ex2 fit --config configs/quickstart.yaml
    lightning-ex2 sample --config configs/quickstart.yaml \\
        --ckpt_path logs/quickstart/fit/checkpoints/last.ckpt --n_steps 500
    lightning-ex2 fit --config configs/quickstart.yaml --print_config
"""

# ruff: noqa: E402  (the rank variables are checked before Lightning is imported)
from __future__ import annotations

import dataclasses
import difflib
import errno
import importlib
import inspect
import logging
import os
import pkgutil
import re
import signal
import sys
import types
import typing
import warnings
from pathlib import Path
from typing import Any

from lightning_ex2.environment import exit_on_bad_rank_variables

exit_on_bad_rank_variables()  # before Lightning's import reads them (a traceback otherwise)

import pytorch_lightning as pl
import torch
import yaml
from jsonargparse import ArgumentError, ArgumentParser, DefaultHelpFormatter
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_ex2 import interrupt
from lightning_ex2.checks import is_out_of_memory, memory_message
from lightning_ex2.environment import choose_threads, ensure_writable_caches
from lightning_ex2.errors import Interrupted, RankLost, UserError
from lightning_ex2.lightning.callbacks.writer import SampleWriter
from lightning_ex2.lightning.compat import (
    ConfigFirstCLI,
    action_typehint,
    class_parameters,
    cli_parsers,
    parser_actions,
    subcommand_parsers,
)
from lightning_ex2.lightning.trainer import TRAINER_DEFAULTS, Ex2Trainer
from lightning_ex2.output.files import save_text
from lightning_ex2.output.writer import OutputOptions

#: environment variable that makes errors show their traceback (as ``--debug`` does)
DEBUG_ENV = "LIGHTNING_EX2_DEBUG"


#: a Sphinx role, ``:class:`x```, ``:py:meth:`~a.b``` or ``:ref:`text <target>```
_ROLE = re.compile(r"(?::[a-z]+)+:`(~?)([^`<]*?)\s*(?:<[^`>]*>)?`")
#: RST inline literal ````x````
_LITERAL = re.compile(r"``([^`]+?)``")
#: a docstring's own "Default: x." sentence (Lightning's), which the CLI's defaults override
_DOC_DEFAULT = re.compile(r"\s*\bDefault:\s.*?\.(?=\s|$)")


def plain_text(text: str) -> str:
    """``text`` (a docstring's reST, as the help shows it) without reST markup: roles keep
    their text (``:class:`~a.B``` -> ``B``, ``:func:`f``` -> ``f``), inline literals drop
    their double backticks.

    >>> plain_text(":meth:`preflight` of ``Trainer.fit``; :class:`~torch.nn.Module`")
    'preflight of Trainer.fit; Module'
    """

    def role(m: re.Match[str]) -> str:
        return m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)

    return _LITERAL.sub(r"\1", _ROLE.sub(role, text))


class PlainHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help formatter, with the reST markup of the docstrings that feed the
    help (ours and Lightning's) removed before wrapping (:func:`plain_text`), and without
    a docstring's "Default: x." where the help states the command's real default."""

    def _get_help_string(self, action: Any) -> str:
        text = super()._get_help_string(action)
        if "default: %(default)s" in text:  # the real default follows: drop the docstring's
            head, sep, tail = text.rpartition(" (")
            text = _DOC_DEFAULT.sub("", head) + sep + tail
        return text

    def start_section(self, heading: str | None) -> None:
        super().start_section(None if heading is None else plain_text(heading))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(plain_text(text), width, indent)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return super()._split_lines(plain_text(text), width)


class Ex2ArgumentParser(LightningArgumentParser):
    """The command's parser: :class:`PlainHelpFormatter` for every ``--help`` (the
    subcommands' parsers and jsonargparse's ``--<key>.help`` parsers are of this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)


class Ex2SaveConfig(SaveConfigCallback):
    """``fit`` writes ``<log_dir>/config.yaml`` atomically (Lightning's callback writes it
    in place); ``sample`` puts the config in its output set (through the run's
    :class:`~lightning_ex2.output.writer.SamplePlan`); ``validate``/``test`` write nothing."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and not self.already_saved and self.save_to_log_dir:
            log_dir = trainer.log_dir  # every rank: Lightning broadcasts it
            if log_dir is not None and trainer.is_global_zero:
                text = self.parser.dump(self.config, skip_none=False)
                save_text(Path(log_dir) / self.config_filename, text)
                self.save_config(trainer, pl_module, stage)
        self.already_saved = True


class Ex2CLI(ConfigFirstCLI):
    """LightningCLI whose ``data.n_chains`` feeds ``model.n_chains``, plus ``sample``.

    Models are any LightningModule by class_path (``MCMCSampler``, ``FlEx2MCMC``,
    ``lightning_ex2.gan.GANModule``); data default to ``ChainDataModule``.
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        # `predict` is `sample` without an output set: left out (sample is the predict command)
        commands = {k: v for k, v in LightningCLI.subcommands().items() if k != "predict"}
        return {**commands, "sample": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # `data:` without a class_path is a ChainDataModule (every sampler config);
        # GAN training configs name an image DataModule instead.
        parser.set_defaults({"data": {"class_path": "lightning_ex2.lightning.ChainDataModule"}})
        parser.link_arguments("data.init_args.n_chains", "model.init_args.n_chains")
        parser.add_argument(
            "--threads",
            type=int | None,
            default=None,
            help="CPU threads per process (torch.set_num_threads); default: what the "
            "process may use: OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else the CPU "
            "affinity mask, divided among the CPU processes of one machine",
        )

    def before_sample(self) -> None:
        """``sample`` never creates a log version (``version_N``, ``hparams.yaml``) nor
        restores the fit run's checkpoint callbacks (Lightning's "dirpath has changed"):
        it runs without the config's loggers and ``ModelCheckpoint``s; its record is
        the output set, TensorBoard events included (the writer's own events file)."""
        trainer = self.trainer
        writer = next((cb for cb in trainer.callbacks if isinstance(cb, SampleWriter)), None)
        options = writer.options if writer is not None else OutputOptions()
        # the TensorBoard record moves into the set (when the config asked for one)
        tensorboard = any(isinstance(lg, TensorBoardLogger) for lg in trainer.loggers)
        writer = SampleWriter(dataclasses.replace(options, events_in_set=tensorboard))
        trainer.loggers = []
        kept = [
            cb for cb in trainer.callbacks if not isinstance(cb, ModelCheckpoint | SampleWriter)
        ]
        trainer.callbacks = [*kept, writer]

    def before_validate(self) -> None:
        """``validate`` writes no file: it runs without the config's loggers (which would
        add an events file, or a log version, to the fit run's folder, possibly while
        that run is alive); its scores are printed and returned."""
        self.trainer.loggers = []

    before_test = before_validate

    def before_instantiate_classes(self) -> None:
        """Set the thread count (``--threads``, see :func:`choose_threads`) before any
        model is built; the processes DDP starts inherit it through OMP_NUM_THREADS."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        requested = config.get("threads") if config else None
        trainer = config.get("trainer") if config else None
        processes = 1
        if trainer is not None and str(trainer.get("accelerator")) == "cpu":
            devices = trainer.get("devices")
            processes = devices if isinstance(devices, int) and devices > 1 else 1
        try:
            n = choose_threads(requested, processes=processes)
        except ValueError as err:
            raise UserError(str(err)) from err
        torch.set_num_threads(n)
        os.environ["OMP_NUM_THREADS"] = str(n)  # DDP ranks; Lightning then leaves it

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, with every parse error as one :class:`UserError` line naming the key
        (and the closest valid key or class); refuse a ``--config`` file with a duplicated
        key, and top-level keys that no option takes (jsonargparse drops a key that holds
        an empty mapping, e.g. ``foo: {}``)."""
        given = sys.argv[1:] if args is None else args
        argv = [str(a) for a in given] if isinstance(given, list | tuple) else []
        loaded = {path: read_config(path) for path in _config_paths(argv)}  # read once
        for p in cli_parsers(parser):
            p.exit_on_error = False  # raise ArgumentError: condensed below
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            raise UserError(explain_parse_error(err, parser, argv, loaded)) from err
        subcommand = self.config.get("subcommand")
        if not subcommand or subcommand not in argv:
            return
        config = self.config[subcommand]
        accepted = {key.split(".", 1)[0] for key in config.keys()}  # noqa: SIM118 (a Namespace)
        for path in _config_paths(argv[argv.index(subcommand) + 1 :]):
            unknown = sorted(set(loaded[path] or {}) - accepted)
            if unknown:
                raise UserError(
                    f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                    f"accepted: {', '.join(sorted(accepted - {'config'}))}"
                )

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
            # Our constructors name the offending field; no traceback from deep inside.
            cause = constructor_error(err)
            text = next((s.strip() for s in str(cause).splitlines() if s.strip()), "")
            text = text or type(cause).__name__
            if is_out_of_memory(err) or is_out_of_memory(cause):
                config = self.config.get(self.subcommand) if self.subcommand else self.config
                chains = config.get("data.init_args.n_chains") if config else None
                raise UserError(memory_message(cause, chains=chains)) from err
            if isinstance(err, RuntimeError) and cause is err:
                raise  # not a configuration's mistake
            # data.n_chains feeds model.n_chains (link_arguments): name the key users set
            text = text.replace("`model.n_chains`", "`data.n_chains`")
            text = text.replace("model.n_chains ", "data.n_chains ")
            raise UserError(f"invalid configuration: {text}") from err


def _config_paths(argv: list[str]) -> list[str]:
    """The files given to ``--config``/``-c`` on a command line."""
    out = []
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif arg.startswith("--config="):
            out.append(arg.split("=", 1)[1])
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise UserError(
                f"{key_node.start_mark.name}:{line}: key {key!r} appears twice (first at line "
                f"{seen[key]}); YAML would keep only the last value: remove one"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,  # type: ignore[arg-type]
)


def read_config(path: str) -> dict[str, Any] | None:
    """The ``--config`` file at ``path``, read once per command: refused (one
    :class:`UserError` line) when it repeats a key in a mapping, is empty, or holds a list
    or a single value instead of a mapping of options; ``None`` when it is unreadable
    (the parser names it)."""
    try:
        with open(path) as stream:
            loaded = yaml.load(stream, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if isinstance(loaded, dict):
        return loaded
    what = (
        "is empty"
        if loaded is None
        else f"holds {'a list' if isinstance(loaded, list) else 'a single value'} "
        f"({str(loaded)[:40]!r})"
    )
    raise UserError(
        f"--config {path} {what}, not a mapping of options; a config starts with keys such "
        "as trainer:, model: and data: (see configs/quickstart.yaml)"
    )


# ----------------------------------------------------------------------- parse errors
# jsonargparse reports a parse error as nested English text: its exceptions carry no key
# and no value. The one line is built from structures instead: the subcommand parser's
# options and their types, the values given (the --config files, then the command line),
# our own import of every class_path and the arguments the parser accepts for each class.
# Only when none of these finds the problem is jsonargparse's text shown (on one line).

#: spellings of NaN and infinity (lower case, sign and YAML's leading dot removed)
NON_FINITE = ("nan", "inf", "infinity")
#: keys of a class given as ``{class_path, init_args}`` that are not its arguments
_SPEC_KEYS = ("class_path", "init_args", "dict_kwargs", "__path__")


class _Typed(str):
    """A value as typed on the command line (the parser reads it as text)."""


def _closest(word: str, candidates: Any) -> str:
    """``"; did you mean X?"`` for the closest candidate, or ``""``."""
    found = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {found[0]}?" if found else ""


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        child = tree.get(part)
        tree = tree.setdefault(part, {}) if not isinstance(child, dict) else child
    tree[last] = value


def _merge(tree: dict[str, Any], loaded: dict[str, Any]) -> None:
    for key, value in loaded.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _merge(tree[key], value)
        else:
            tree[key] = value


def _given(argv: list[str], loaded: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The values ``argv`` gives (the ``--config`` files, as ``loaded`` holds them, merged
    in order, then every ``--key value``, as nested keys) and its ``--key`` flags."""
    tree: dict[str, Any] = {}
    flags: list[str] = []
    i = 0
    while i < len(argv):
        arg, i = argv[i], i + 1
        if not arg.startswith("--"):
            continue
        key, eq, value = arg[2:].partition("=")
        if not eq and i < len(argv) and not argv[i].startswith("--"):
            value, i = argv[i], i + 1
        flags.append(f"--{key}")
        if key == "config":
            if isinstance(loaded.get(value), dict):  # an unreadable file: the parser names it
                _merge(tree, loaded[value])
        elif value or eq:
            _set(tree, key, _Typed(value))
    return tree, flags


def _classes_in(typehint: Any) -> list[type]:
    """The classes (not builtins) ``typehint`` names, e.g. ``LightningModule`` in
    ``LightningModule | None``: an option given as ``{class_path, init_args}``."""
    if inspect.isclass(typehint) and typing.get_origin(typehint) is None:
        return [] if typehint.__module__ == "builtins" else [typehint]
    return [c for arg in typing.get_args(typehint) for c in _classes_in(arg)]


def _accepts(typehint: Any, value: Any) -> bool:
    """Whether a parser with one option of type ``typehint`` takes ``value``."""
    parser = ArgumentParser(exit_on_error=False)
    try:
        parser.add_argument("--v", type=typehint)
    except Exception:  # a type the parser cannot take alone: no verdict
        return True
    try:
        if isinstance(value, _Typed):
            parser.parse_args([f"--v={value}"])
        else:
            parser.parse_object({"v": value})
    except Exception:
        return False
    return True


def _type_names(typehint: Any) -> list[str]:
    """``["int"]`` for ``int | None``, ``["float", "str"]`` for ``float | str``."""
    if typing.get_origin(typehint) in (typing.Union, types.UnionType):
        return [n for a in typing.get_args(typehint) for n in _type_names(a)]
    if typehint is type(None):
        return []
    return [getattr(typehint, "__name__", None) or str(typehint)]


def _value_problem(typehint: Any, value: Any, where: str, default: Any = None) -> str | None:
    """What is wrong with ``value`` for an option of type ``typehint`` (``None``: nothing
    found); a class given as a mapping is checked by :func:`_class_problem`."""
    bases = _classes_in(typehint)
    if bases and isinstance(value, dict):
        class_path = value.get("class_path") or (
            default.get("class_path") if hasattr(default, "get") else None
        )
        return _class_problem(str(class_path), value, where, bases) if class_path else None
    if bases and isinstance(value, list):
        for n, item in enumerate(value):
            if isinstance(item, dict) and item.get("class_path"):
                spec = str(item["class_path"])
                problem = _class_problem(spec, item, f"{where}[{n}]", bases)
                if problem:
                    return problem
        return None
    if typehint is None or isinstance(typehint, str) or _accepts(typehint, value):
        return None
    names = _type_names(typehint)
    text = str(value).strip().lower().lstrip("+-.")
    if isinstance(value, str) and text in NON_FINITE and {"float", "int"} & set(names):
        return f"{where}: must be a finite number, got {value!r}"
    return f"{where}: expected {' or '.join(names)}, got {value!r}"


def _resolve(class_path: str) -> tuple[Any, str, str]:
    """``(class, "", "")``, or ``(None, problem, hint)`` for a ``class_path`` that does not
    import: what is missing, and ``"; did you mean <the path corrected>?"`` (or ``""``)."""
    parts = class_path.split(".")
    obj, n = None, 0
    for n in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
            break
        except Exception:  # not a module (or it fails to import): try its parent
            continue
    if obj is None:
        names = [m.name for m in pkgutil.iter_modules()]
        found = difflib.get_close_matches(parts[0], names, n=1, cutoff=0.6)
        hint = f"; did you mean {'.'.join([found[0], *parts[1:]])}?" if found else ""
        return None, f"no module named {parts[0]!r}", hint
    while n < len(parts):
        if not hasattr(obj, parts[n]):
            break
        obj, n = getattr(obj, parts[n]), n + 1
    else:
        return obj, "", ""
    owner = ".".join(parts[:n])
    names = [a for a in dir(obj) if not a.startswith("_")]
    names += [m.name for m in pkgutil.iter_modules(getattr(obj, "__path__", []))]
    found = difflib.get_close_matches(parts[n], sorted(set(names)), n=1, cutoff=0.6)
    hint = f"; did you mean {'.'.join([*parts[:n], found[0], *parts[n + 1 :]])}?" if found else ""
    if not found:  # not there, nor a near spelling: does the package export it elsewhere?
        home = _home_of(parts[0], parts[-1])
        hint = f"; did you mean {home}?" if home else ""
    return None, f"{owner} has no {parts[n]!r}", hint


def _home_of(package: str, name: str) -> str | None:
    """``package.<subpackage>.name`` for the first subpackage of ``package`` that exports
    ``name`` (``None``: none does)."""
    try:
        root = importlib.import_module(package)
    except Exception:
        return None
    for info in pkgutil.iter_modules(getattr(root, "__path__", [])):
        if info.ispkg:
            try:
                module = importlib.import_module(f"{package}.{info.name}")
            except Exception:
                continue
            if name in getattr(module, "__all__", ()):
                return f"{package}.{info.name}.{name}"
    return None


def _subclasses(bases: list[type]) -> dict[str, str]:
    """``{name: class path}`` of the subclasses of ``bases`` imported so far."""
    found: dict[type, None] = {}
    stack = list(bases)
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found[sub] = None
                stack.append(sub)
    return {c.__name__: f"{c.__module__}.{c.__qualname__}" for c in found}


def _class_problem(
    class_path: str, spec: dict[str, Any], where: str, bases: list[type]
) -> str | None:
    """What is wrong with the class ``class_path`` (a subclass of one of ``bases``) given
    as ``spec`` at ``where``."""
    if "." not in class_path:  # a bare name: the parser looks it up among the subclasses
        known = _subclasses(bases)
        if class_path not in known:
            kinds = " or ".join(b.__name__ for b in bases)
            hint = _closest(class_path, known)
            return f"{where}: class_path {class_path!r} names no {kinds} subclass{hint}"
        class_path = known[class_path]
    cls, problem, hint = _resolve(class_path)
    if cls is None:
        return f"{where}: class_path {class_path!r} does not resolve ({problem}){hint}"
    try:
        params = class_parameters(cls)
    except Exception:  # no signature the parser can read: no verdict
        return None
    given = dict(spec.get("init_args") or {})
    given.update({k: v for k, v in spec.items() if k not in _SPEC_KEYS})
    for name, value in given.items():
        key = f"{where}.init_args.{name}"
        if name not in params:
            return f"{key}: not an argument of {class_path}{_closest(name, params)}"
        problem = _value_problem(params[name], value, key)
        if problem:
            return problem
    return None


def _tree_problem(tree: dict[str, Any], actions: dict[str, Any], prefix: str = "") -> str | None:
    """The first given key of ``tree`` that the options ``actions`` (by dest) refuse."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path == "config":
            continue
        action = actions.get(path)
        if action is not None and action_typehint(action) is not None:
            problem = _value_problem(action_typehint(action), value, path, action.default)
        elif isinstance(value, dict) and any(d.startswith(f"{path}.") for d in actions):
            problem = _tree_problem(value, actions, f"{path}.")  # a group (trainer)
        elif action is None:
            return f"unknown option {path}{_closest(path, actions)}"
        else:
            problem = None  # an option of no type (a group's config file)
        if problem:
            return problem
    return None


def _takes(argv: list[str], i: int) -> bool:
    """Whether ``argv[i]`` is the value of the option before it (``--key value``)."""
    return i > 0 and argv[i - 1].startswith("--") and "=" not in argv[i - 1]


def explain_parse_error(
    err: BaseException, parser: Any, argv: list[str], loaded: dict[str, Any] | None = None
) -> str:
    """A parse error of ``argv`` (its ``--config`` files as read: ``loaded``, by path) as
    one line: the full key, what is wrong with it, and the closest valid option, argument
    or class path."""
    subcommands = subcommand_parsers(parser)
    name = next((a for a in argv if a in subcommands), None)
    if subcommands and name is None:
        words = [a for i, a in enumerate(argv) if not a.startswith("-") and not _takes(argv, i)]
        word = words[0] if words else ""
        given = f"unknown command {word!r}" if word else "no command given"
        return f"{given}; the commands: {', '.join(subcommands)}{_closest(word, subcommands)}"
    sub = subcommands.get(name, parser) if name else parser
    rest = argv[argv.index(name) + 1 :] if name else argv
    actions = {
        a.dest: a
        for a in parser_actions(sub)
        if a.dest not in ("help", "config") and not a.dest.endswith(".help")
    }
    options = {f: a for a in parser_actions(sub) for f in a.option_strings}
    tree, flags = _given(rest, loaded or {})
    nested = [d for d, a in actions.items() if _classes_in(action_typehint(a))]
    for flag in flags:
        key = flag[2:]
        if flag not in options and not any(key.startswith(f"{d}.") for d in nested):
            return f"unknown option {flag}{_closest(flag, options)}"
    return _tree_problem(tree, actions) or " ".join(str(err).split())


def constructor_error(err: BaseException) -> BaseException:
    """The exception a constructor raised, under the parser's wrappers (jsonargparse
    raises each of its errors ``from`` the one it wraps)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


# Expected with our design, not actionable by users:
QUIET_WARNINGS = (
    # a checkpoint after the move + flow update is exactly the state we want
    "Using ModelCheckpoint with manual optimization",
    # MCMCSampler with a local kernel has nothing to optimize
    "`LightningModule.configure_optimizers` returned `None`",
    # an epoch is one sweep (often one step); logging is per step, not per epoch
    "The number of training batches",
    # GANLatentTarget keeps its generator/discriminator in eval mode on purpose
    "module(s) in eval mode at the start of training",
    # image DataModules with val_fraction=0
    "Total length of `list` across ranks is zero",
    # pytorch-lightning 2.6 vs torch 2.13 internals
    "`isinstance(treespec, LeafSpec)` is deprecated",
)


def _not_an_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()


def quiet_warnings() -> None:
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=".*" + re.escape(message))
    # Lightning advertises a cloud logger on every run; keep the console about the run.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_an_advert)


#: the CLI's trainer defaults: Ex2Trainer's (the CLI passes every Trainer argument,
#: so they are repeated as parser defaults here) plus the command's own
CLI_TRAINER_DEFAULTS: dict[str, Any] = {
    **TRAINER_DEFAULTS,
    "log_every_n_steps": 10,
    "default_root_dir": "logs",
    "enable_model_summary": False,
}


def build_cli(args: list[str] | None = None, run: bool = True) -> Ex2CLI:
    """Parse ``args`` (default ``sys.argv``), instantiate, and run unless ``run=False``."""
    quiet_warnings()
    return Ex2CLI(
        pl.LightningModule,
        pl.LightningDataModule,
        trainer_class=Ex2Trainer,
        parser_class=Ex2ArgumentParser,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=Ex2SaveConfig,
        # fit refuses a used log folder unless it resumes the run there (Ex2Trainer.fit)
        save_config_kwargs={"overwrite": True},
        trainer_defaults=CLI_TRAINER_DEFAULTS,
        parser_kwargs={
            "description": "lightning-ex2: i-SIR, Ex2MCMC and FlEx2MCMC sampling "
            "(fit = warm-up/flow training, sample = the frozen sampler). "
            "Run a subcommand with --help for its options."
        },
        args=args,
        run=run,
    )


def _fail(message: str, code: int) -> None:
    print(f"lightning-ex2: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning-ex2`` command.

    Mistakes (:class:`~lightning_ex2.errors.UserError`) end with one line on stderr and
    exit status 2; a stop signal (SIGTERM, SIGINT) ends the run cleanly (``fit`` saves
    ``last.ckpt``, ``sample`` keeps the draws made) with one line and status 143/130.
    ``--debug`` (anywhere on the command line) or ``LIGHTNING_EX2_DEBUG=1`` shows the
    traceback as well.
    """
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if debug:
        os.environ[DEBUG_ENV] = "1"  # also for the processes DDP launches
    if args is None:
        # LightningCLI reads sys.argv itself (and DDP re-launches it): keep it, minus --debug
        sys.argv = [sys.argv[0], *argv]
    interrupt.clear()
    restore = interrupt.install()
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    try:
        ensure_writable_caches()  # a read-only or missing $HOME: before any work
        build_cli(None if args is None else argv)
        close_process_group()
    except (Interrupted, UserError, RankLost) as err:
        if debug:
            raise
        _fail(f"{'interrupted' if isinstance(err, Interrupted) else 'error'}: {err}", err.exit_code)
    except OSError as err:
        if debug or err.errno not in _MACHINE_FULL:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        _fail(
            f"error: {err.strerror or err}{where}; free space there or write elsewhere "
            "(an output set is published only whole; a fit resumes from its last checkpoint)",
            2,
        )
    finally:
        restore()
        torch.set_num_threads(threads)  # as before the command (in-process callers)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp
    reason = interrupt.requested()
    if reason is not None:  # the signal came after the last step: the run is complete
        _fail(f"interrupted: {reason} received; the run had completed", 128 + _signum(reason))


#: ``errno`` values of a full disk or quota: the machine, not the program (one line)
_MACHINE_FULL = (errno.ENOSPC, errno.EDQUOT)


def close_process_group() -> None:
    """End a finished multi-process run together: a barrier, then the process group's
    own shutdown. Left to the interpreter's exit instead, a rank whose peers have
    already exited can hang in the gloo group's destructor (seen with torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _signum(name: str) -> int:
    return int(getattr(signal, name, 0)) or 0


if __name__ == "__main__":
    main()
