"""planner.optimize.instance: demand weights, and the one-line refusals of a bad cost matrix or an
infeasible model.
"""

from __future__ import annotations

import numpy as np
import pytest

from planner import InfeasibleError, InputError
from planner.optimize import PMedian, demand_weights


def test_demand_weights():
    w = demand_weights([10, 20], elderly=[2, 0], children=[1, 1], priority={"elderly": 1.0, "children": 0.5})
    np.testing.assert_allclose(w, [12.5, 20.5])
    np.testing.assert_allclose(demand_weights([3, 4]), [3, 4])
    with pytest.raises(InputError):
        demand_weights([1, -1])


@pytest.mark.parametrize(
    ("cost", "match"),
    [
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, -5.0]]), "negative"),
        (np.array([1.0, 2.0]), "2-D"),
    ],
)
def test_bad_cost_raises_input_error(cost, match):
    with pytest.raises(InputError, match=match):
        PMedian.from_cost_matrix(cost, p=1)


def test_bad_inputs_and_infeasible_models():
    cost = np.array([[60.0, 120.0], [120.0, 60.0]])
    with pytest.raises(InputError, match="weights: 3 values"):
        PMedian.from_cost_matrix(cost, [1, 2, 3], p=1)
    with pytest.raises(InputError, match="p=3 exceeds"):
        PMedian.from_cost_matrix(cost, p=3)
    with pytest.raises(InfeasibleError, match="no candidate"):
        PMedian.from_cost_matrix(np.zeros((3, 0)), p=0)
    with pytest.raises(InfeasibleError, match=r"capacities: the 0 fixed and 1 largest new sites hold 5"):
        PMedian.from_cost_matrix(cost, [4, 4], p=1, capacities=[5, 3]).solve()
    # Two homes 600 s apart: one site cannot serve both within 5 minutes.
    far = np.array([[60.0, 600.0], [600.0, 60.0]])
    with pytest.raises(
        InfeasibleError,
        match="p=1 is below the 2 new sites needed to cover every reachable home within 5 min; raise p to 2",
    ):
        PMedian.from_cost_matrix(far, p=1, minutes=5).solve()
    assert issubclass(InfeasibleError, InputError)
