"""The kernel comparison (``make compare``): each run's verdict is a column of its table,
not an anonymous warning from inside the demo."""

from __future__ import annotations

import warnings

from lightning_ex2.lightning.demo import run_table


def test_each_row_carries_its_verdict_and_nothing_warns() -> None:
    # 4 chains x 20 draws: too few for the rule's ESS of 400, so no run converges
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        table = run_table(n_chains=4, n_steps=20, burn_in=5, seed=0)
    header, _, *rows = table.splitlines()
    assert header.rstrip(" |").endswith("converged")
    assert len(rows) == 10
    for row in rows:
        verdict = row.strip(" |").rsplit("|", 1)[-1].strip()
        assert verdict.startswith("no (") and "ess_bulk_min" in verdict, row
