"""The NLL benchmark: its table keeps the documented rows of the models it did not rerun,
and its training loop decays the rate on plateaus and stops when decays bring nothing."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _benchmark(name: str = "density_nll"):
    sys.path.insert(0, str(REPO / "apps" / "benchmarks"))  # for its `_docs` import
    try:
        spec = importlib.util.spec_from_file_location(
            name, REPO / "apps" / "benchmarks" / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "apps" / "benchmarks"))
    return module


def _result(name: str, nll: float) -> dict:
    return {
        "model": name,
        "class": "FVSBN",
        "config": {},
        "parameters": 10,
        "epochs": 3,
        "train_seconds": 60.0,
        "learning_rate": 1e-3,
        "test_nll": nll,
        "published": "97.45",
        "source": "a paper",
        "target": 99,
    }


def test_rerunning_one_model_keeps_the_other_rows_in_order():
    bench = _benchmark()
    old = bench.table([_result("fvsbn", 120.0), _result("made", 91.0)], "jax")
    doc = f"intro\n<!-- density-nll jax begin -->\n{old}\n<!-- density-nll jax end -->\n"
    text = bench.merged_table([_result("fvsbn", 98.0)], "jax", doc)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["fvsbn", "made"]
    assert "98.00 ✓" in rows[1] and "120.00" not in text  # replaced
    assert "91.00" in rows[2]  # kept from the docs
    # another backend's block is not mixed in; an empty doc gives just the new rows
    assert "91.00" not in bench.merged_table([_result("fvsbn", 98.0)], "torch", doc)
    assert bench.merged_table([], "jax", "").count("\n") == 3  # caption, blank, header x2


class _Stuck:
    """A stand-in model whose score never improves after its first epochs."""

    def __init__(self, scores):
        self.scores, self.fits, self.weights = list(scores), 0, [0]

    def fit(self, *args, **kwargs):
        self.fits += 1
        self.weights = [self.fits]

    def get_weights(self):
        return list(self.weights)

    def set_weights(self, weights):
        self.weights = list(weights)


@pytest.mark.parametrize("later", ["worse", "tiny gains"])
def test_training_decays_on_plateaus_and_stops_when_decays_bring_nothing(later):
    import keras

    training = _benchmark("_training")
    tail = [5.0] * 100 if later == "worse" else [2.0 - 1e-4 * (i + 1) for i in range(100)]
    model = _Stuck([3.0, 2.0, *tail])
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build([])
    best, epochs, _ = training.train_for_minutes(
        model,
        optimizer,
        None,
        lambda: model.scores[model.fits - 1],
        minutes=60,
        batch_size=1,
        name="stuck",
        patience=2,
        decay=0.5,
        max_decays=3,
        min_gain=0.01,
    )
    # 2 improving epochs, then 3 plateaus of 2 epochs that each decay, then a 4th that
    # stops: gains below min_gain are no progress
    assert epochs == 2 + 2 * 4
    assert abs(float(optimizer.learning_rate) - 1e-3 * 0.5**3) < 1e-9
    if later == "worse":
        assert best == 2.0 and model.weights == [2]  # the best epoch's weights restored
    else:  # the best weights are still the best, however small the gain
        assert abs(best - (2.0 - 8e-4)) < 1e-12 and model.weights == [10]


def test_a_checkpointed_run_resumes_where_it_stopped(tmp_path):
    import keras
    import numpy as np

    from mp_keras.models import FVSBN

    training = _benchmark("_training")
    x = (np.random.default_rng(0).random((16, 2, 2, 1)) < 0.5).astype("float32")

    def run(minutes, resume, model=None):
        model = model or FVSBN(input_shape=(2, 2, 1), seed=0)
        optimizer = keras.optimizers.Adam(1e-2)
        model.compile(optimizer=optimizer)
        score = lambda: model.nll(x)  # noqa: E731
        args = (model, optimizer, x, score, minutes, 8, "fvsbn")
        result = training.train_for_minutes(*args, checkpoint=tmp_path / "run.npz", resume=resume)
        return result, model, optimizer

    # a budget shorter than an epoch trains exactly one epoch and checkpoints it
    (best, epochs, seconds), model, optimizer = run(1e-9, resume=False)
    assert epochs == 1 and (tmp_path / "run.npz").is_file()
    # resuming with that budget spent trains nothing and restores everything
    (best2, epochs2, seconds2), model2, optimizer2 = run(1e-9, resume=True)
    assert (best2, epochs2, seconds2) == (best, epochs, seconds)
    for a, b in zip(model.get_weights(), model2.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(optimizer.variables, optimizer2.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(optimizer2.iterations) == 2  # two steps of 8 images
    # a larger total budget goes on counting from there
    _, epochs3, seconds3 = run(seconds / 60 + 1e-9, resume=True)[0]
    assert epochs3 == 2 and seconds3 > seconds
    # another configuration is refused by name, before anything is overwritten
    before = (tmp_path / "run.npz").read_bytes()
    with pytest.raises(ValueError, match=r"run\.npz"):
        run(1.0, resume=True, model=FVSBN(input_shape=(3, 3, 1), seed=0))
    assert (tmp_path / "run.npz").read_bytes() == before
