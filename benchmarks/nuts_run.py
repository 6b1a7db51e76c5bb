"""NUTS (numpyro, JAX CPU) on the benchmark targets; run inside ``benchmarks/.venv-nuts``.

Called by ``quality.py`` as a subprocess (it needs its own environment):

    benchmarks/.venv-nuts/bin/python benchmarks/nuts_run.py --kind funnel --dim 10 \
        --chains 100 --warmup 200 --samples 300 --out /tmp/nuts.npz

Writes ``draws`` (chain, draw, dim), ``warmup_s`` (includes JIT compilation),
``sample_s``, ``compile_s`` (the time of a 2-step dry run, also compiled) and
``n_grad`` (per chain: the leapfrog steps, i.e. gradient evaluations, of the
sampling phase) to the ``.npz``. Chains are vectorized (``chain_method="vectorized"``), start from
``N(0, I)``, adapt a diagonal mass matrix and the step size (target 0.8). The
log-densities equal ours: ``Funnel(a=2, b=0.5)``, ``Banana(b=0.02, sigma=5)``,
``GridMixture(k=5, spacing=5, scale=1)``.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", required=True, choices=["funnel", "banana", "mixture"])
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.threads == 1:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.scipy.special import logsumexp
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_platform_name", "cpu")

    if a.kind == "funnel":

        def log_prob(x):
            x0, rest = x[0], x[1:]
            lp0 = -0.5 * (x0 / 2.0) ** 2
            return lp0 - 0.5 * jnp.sum(rest**2) * jnp.exp(-x0) - (a.dim - 1) * 0.5 * x0

    elif a.kind == "banana":

        def log_prob(x):
            even, odd = x[0::2], x[1::2]
            n = odd.shape[0]
            shift = 0.02 * (even[:n] ** 2 - 25.0)
            return -0.5 * jnp.sum(even**2) / 25.0 - 0.5 * jnp.sum((odd - shift) ** 2)

    else:
        c = 5.0 * (jnp.arange(5) - 2.0)
        means = jnp.stack(jnp.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)

        def log_prob(x):
            return logsumexp(-0.5 * jnp.sum((x - means) ** 2, -1))

    def potential(x):
        return -log_prob(x)

    init = np.random.default_rng(a.seed).standard_normal((a.chains, a.dim)).astype(np.float32)

    def make():
        return MCMC(
            NUTS(potential_fn=potential),
            num_warmup=a.warmup,
            num_samples=a.samples,
            num_chains=a.chains,
            chain_method="vectorized",
            progress_bar=False,
        )

    t = time.perf_counter()
    dry = MCMC(
        NUTS(potential_fn=potential),
        num_warmup=1,
        num_samples=1,
        num_chains=a.chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    dry.run(jax.random.PRNGKey(a.seed + 1), init_params=jnp.asarray(init))
    compile_s = time.perf_counter() - t

    mcmc = make()
    t = time.perf_counter()
    mcmc.warmup(jax.random.PRNGKey(a.seed), init_params=jnp.asarray(init))
    jax.block_until_ready(mcmc.last_state)
    warmup_s = time.perf_counter() - t
    t = time.perf_counter()
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps",))
    draws = np.asarray(mcmc.get_samples(group_by_chain=True))
    sample_s = time.perf_counter() - t
    # leapfrog steps (= gradient evaluations) of the sampling phase, per chain
    steps = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"])
    np.savez(
        a.out,
        draws=draws,
        warmup_s=warmup_s,
        sample_s=sample_s,
        compile_s=compile_s,
        n_grad=steps.reshape(steps.shape[0], -1).sum(-1),
    )
    print(
        f"NUTS {a.kind} d={a.dim}: warmup {warmup_s:.1f}s, sampling {sample_s:.1f}s, "
        f"dry run (compile) {compile_s:.1f}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
