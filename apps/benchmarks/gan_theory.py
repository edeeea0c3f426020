"""Chapter 8's theory of GANs, computed in 1-D: D*, V = 2 JSD - log 4, JS vs W1, x y.

Uses `mp_keras.tools.gan_theory` (notes, 8.1 and the end of 8.2) to produce three figures
and four doc blocks in `docs/chapter8.md` (between `<!-- gan_theory KEY begin/end -->`
markers, KEY = `optimal_discriminator`, `global_optimum`, `js_wasserstein`,
`bilinear_game`):

* `docs/figures/chapter8_optimal_discriminator.png`: for two (p_data, p_model) pairs,
  both densities, D*(x) = p_data / (p_data + p_model) and a small MLP D trained alone by
  `model.fit` with binary cross-entropy; the max |D - D*| where the densities are not
  negligible.
* a table of V(G, D*) against 2 JSD - log 4 for several p_model (no figure);
* `docs/figures/chapter8_js_wasserstein.png`: p_data = N(0, s^2), p_model = N(theta, s^2)
  with s = 0.05: JSD and W1 against theta, and the generator's gradients;
* `docs/figures/chapter8_bilinear_game.png`: simultaneous and alternating gradient steps
  on min_x max_y x y.

Usage (from the repository root; about 20 seconds on a 2-core machine, most of it the two
discriminators):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/gan_theory.py [--seed 0] [--no-docs]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter8.md"
FIGURES = REPO / "docs" / "figures"
TAG = "gan_theory"
STD = 0.05  # the thin Gaussians of the JS-vs-Wasserstein comparison
ETA, GAME_STEPS = 0.2, 100


def discriminator_cases(seed: int) -> list[dict[str, Any]]:
    """Trains D alone for two pairs of densities and measures max |D - D*|."""
    import numpy as np

    from mp_keras.tools import gan_theory as gt

    cases = [
        dict(
            name="overlapping Gaussians",
            label="p_data = N(0, 1), p_model = N(1, 1)",
            p_data=gt.GaussianMixture1D(0.0, 1.0),
            p_model=gt.GaussianMixture1D(1.0, 1.0),
            train=dict(num_samples=4096, epochs=20),
        ),
        dict(
            name="bimodal data, unimodal model",
            label="p_data = 1/2 N(-1.5, 0.7^2) + 1/2 N(1.5, 0.7^2), p_model = N(0, 1.5^2)",
            p_data=gt.GaussianMixture1D([-1.5, 1.5], 0.7),
            p_model=gt.GaussianMixture1D(0.0, 1.5),
            # D* rises and falls twice and its logit falls quadratically in the tails: a
            # deeper ReLU MLP, trained longer, follows it (one tanh layer saturates there).
            train=dict(
                num_samples=8192,
                epochs=100,
                batch_size=1024,
                learning_rate=1e-2,
                units=(32, 32),
                activation="relu",
            ),
        ),
    ]
    for case in cases:
        start = time.perf_counter()
        model = gt.train_discriminator(case["p_data"], case["p_model"], seed=seed, **case["train"])
        case["seconds"] = time.perf_counter() - start
        grid = gt.evaluation_grid(case["p_data"], case["p_model"])
        case["grid"] = (grid.min(), grid.max())
        case["error"] = gt.discriminator_error(model, case["p_data"], case["p_model"], grid)
        low, high = case["p_data"].support(3.0)
        low, high = (
            min(low, case["p_model"].support(3.0)[0]),
            max(high, case["p_model"].support(3.0)[1]),
        )
        x = np.linspace(low, high, 400)
        case["x"] = x
        case["d"] = np.asarray(model.predict(x[:, None].astype("float32"), verbose=0))[:, 0]
        case["d_star"] = gt.optimal_discriminator(case["p_data"], case["p_model"], x)
        print(f"{case['name']}: max |D - D*| = {case['error']:.4f} ({case['seconds']:.1f} s)")
    return cases


def save_discriminator_figure(cases: list[dict[str, Any]], path: Path) -> None:
    from mp_keras.plots import _pyplot, write_figure

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(cases), figsize=(5 * len(cases), 3.6), squeeze=False)
    for ax, case in zip(axes[0], cases):
        x = case["x"]
        ax.fill_between(x, case["p_data"].pdf(x), color="tab:blue", alpha=0.25, label="p_data")
        ax.fill_between(x, case["p_model"].pdf(x), color="tab:red", alpha=0.25, label="p_model")
        ax.plot(x, case["d_star"], color="black", linewidth=2.5, label="D* (Theorem 2)")
        ax.plot(x, case["d"], color="tab:orange", linestyle="--", linewidth=1.8, label="D trained")
        ax.axvspan(*case["grid"], color="0.9", zorder=-1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("x")
        ax.set_title(f"{case['name']}: max |D - D*| = {case['error']:.3f}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_figure(fig, path, dpi=110)


def discriminator_text(cases: list[dict[str, Any]], backend: str, seed: int, path: Path) -> str:
    lines = [
        "**Theorem 2, the optimal discriminator, checked.** With the generator fixed, a "
        "small MLP D (hidden layers as in the table, sigmoid output; `mp_keras.tools.gan_theory."
        "train_discriminator`) is trained alone by `model.fit` with binary cross-entropy "
        "on samples of p_data (label 1) and p_model (label 0), Adam with a cosine-decayed "
        "step, and compared with D*(x) = p_data(x) / (p_data(x) + p_model(x)) on the grey "
        "interval, where p_data + p_model is at least 1% of its maximum (outside it no "
        "sample pins D down). Initial weights and minibatches are drawn by NumPy, so the "
        "three backends train the same D (max errors within 0.003 of each other). "
        f"Backend `{backend}`, seed {seed}; figure "
        f"`{path.relative_to(REPO)}`.",
        "",
        "| p_data, p_model | samples per density, epochs, batch, hidden layers | max \\|D - D*\\| "
        "| train time |",
        "|---|---|---|---|",
    ]
    for c in cases:
        t = c["train"]
        lines.append(
            f"| {c['label']} | {t['num_samples']:,}, {t['epochs']}, {t.get('batch_size', 256)}, "
            f"{'x'.join(map(str, t.get('units', (16,))))} {t.get('activation', 'tanh')} "
            f"| {c['error']:.3f} | {c['seconds']:.1f} s |"
        )
    lines += [
        "",
        "Both trained discriminators sit on D*: the cross-entropy's minimiser over all "
        "functions is the posterior P(data | x), which is D* when the two classes are "
        "equally frequent. In the second case D* is not monotone (the model puts mass "
        "between the modes, where the data has little, and in the tails), and D follows it; "
        "the largest errors are at the ends of the interval, where only a few samples "
        "constrain D.",
    ]
    return "\n".join(lines)


def global_optimum_text() -> str:
    from mp_keras.tools import gan_theory as gt

    p_data = gt.GaussianMixture1D([-1.0, 1.5], [0.6, 0.8], weights=[0.4, 0.6])
    models = [
        ("p_data itself", gt.GaussianMixture1D([-1.0, 1.5], [0.6, 0.8], weights=[0.4, 0.6])),
        ("N(0.5, 1.424^2) (same mean and variance)", gt.GaussianMixture1D(0.5, 1.424)),
        ("N(1.5, 0.8^2) (one mode)", gt.GaussianMixture1D(1.5, 0.8)),
        ("N(0, 1)", gt.GaussianMixture1D(0.0, 1.0)),
        ("N(-3, 0.5^2)", gt.GaussianMixture1D(-3.0, 0.5)),
        ("N(10, 0.1^2) (disjoint)", gt.GaussianMixture1D(10.0, 0.1)),
    ]
    lines = [
        "**Theorem 3, the global optimum, checked.** p_data = 0.4 N(-1, 0.6^2) + "
        "0.6 N(1.5, 0.8^2); for each p_model, V(G, D*) = E_data log D* + E_model "
        "log(1 - D*) and JSD(p_data || p_model) are both integrated numerically "
        "(`value_at_optimum`, `jensen_shannon`: a uniform grid of 40 points per smallest "
        "std over both supports, in log space). -log 4 = "
        f"{-gt.LOG4:.9f}; JSD is at most log 2 = {math.log(2):.6f}.",
        "",
        "| p_model | V(G, D*) | 2 JSD - log 4 | difference |",
        "|---|---|---|---|",
    ]
    for name, p_model in models:
        value = gt.value_at_optimum(p_data, p_model)
        jsd = gt.jensen_shannon(p_data, p_model)
        bound = 2 * jsd - gt.LOG4
        # + 0.0 turns a rounded -0.0 into 0.0 in the table
        lines.append(f"| {name} | {value + 0.0:.9f} | {bound + 0.0:.9f} | {value - bound:.1e} |")
    lines += [
        "",
        "V(G, D*) = 2 JSD - log 4 to rounding for every p_model, its minimum -log 4 is reached "
        "at p_model = p_data, and it climbs to 0 (JSD = log 2) when the supports no longer "
        "overlap. `tests/test_gan_theory.py` checks both equalities (to 1e-9 and 1e-6).",
    ]
    return "\n".join(lines)


def js_wasserstein(seed: int) -> dict[str, Any]:
    import numpy as np

    from mp_keras.tools import gan_theory as gt

    thetas = np.linspace(0.0, 20 * STD, 81)
    return gt.shift_curves(thetas, std=STD, num_samples=4096, seed=seed)


def save_js_wasserstein_figure(curves: dict[str, Any], path: Path) -> None:
    import numpy as np

    from mp_keras.plots import _pyplot, write_figure

    plt = _pyplot()
    t = curves["theta"] / STD
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(t, curves["jsd"], color="tab:blue", linewidth=2, label="JSD (nats)")
    left.axhline(math.log(2), color="tab:blue", linestyle=":", linewidth=1)
    left.set_xlabel("theta / s")
    left.set_ylabel("JSD", color="tab:blue")
    twin = left.twinx()
    twin.plot(t, curves["w1"], color="tab:green", linewidth=2, label="W1 (quadrature)")
    twin.plot(t[::4], curves["w1_samples"][::4], "o", color="tab:green", markersize=3,
              label="W1 (quantiles of samples)")  # fmt: skip
    twin.set_ylabel("W1", color="tab:green")
    lines = left.get_lines()[:1] + twin.get_lines()
    left.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="center right")
    left.set_title(f"N(0, s^2) against N(theta, s^2), s = {STD}", fontsize=9)
    positive = t > 0
    right.semilogy(t[positive], np.abs(curves["value_grad"][positive]), color="tab:blue",
                   linewidth=2, label="|dV(G, D*)/dtheta| = 2 |dJSD/dtheta|")  # fmt: skip
    right.semilogy(t[positive], curves["w1_grad"][positive], color="tab:green", linewidth=2,
                   label="dW1/dtheta")  # fmt: skip
    right.set_ylim(1e-12, 1e2)
    right.set_xlabel("theta / s")
    right.set_title("the generator's gradient", fontsize=9)
    right.grid(True, which="major", alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    write_figure(fig, path, dpi=110)


def js_wasserstein_text(curves: dict[str, Any], path: Path) -> str:
    import numpy as np

    rows = [1, 2, 4, 6, 10, 20]  # theta / s
    index = [int(np.argmin(np.abs(curves["theta"] / STD - r))) for r in rows]
    lines = [
        "**JS against Wasserstein when the supports (almost) do not overlap** (end of 8.2). "
        f"p_data = N(0, s^2) and p_model = N(theta, s^2) with s = {STD}: two thin Gaussians "
        "that stop overlapping once theta is a few s. The generator's gradient under the "
        "optimal discriminator is dV(G_theta, D*)/dtheta = integral dp_model/dtheta "
        "log(1 - D*) dx (envelope theorem: D* is optimal for each theta; "
        "`generator_gradient`, checked against finite differences of the quadrature); "
        "W1 = integral |F_data - F_model| dx, its gradient by central differences, and W1 "
        "also from 4,096 samples of each by the 1-D quantile formula, mean |sorted(a) - "
        f"sorted(b)| (`wasserstein1_from_samples`). Figure `{path.relative_to(REPO)}`.",
        "",
        "| theta / s | JSD (nats) | dV/dtheta | W1 | W1 from samples | dW1/dtheta |",
        "|---|---|---|---|---|---|",
    ]
    for r, i in zip(rows, index):
        lines.append(
            f"| {r} | {curves['jsd'][i]:.6f} | {curves['value_grad'][i]:.2e} | "
            f"{curves['w1'][i]:.4f} | {curves['w1_samples'][i]:.4f} | {curves['w1_grad'][i]:.4f} |"
        )
    near, far = curves["value_grad"][index[0]], curves["value_grad"][index[4]]
    lines += [
        "",
        f"From theta = s to theta = 10 s the JS gradient falls by a factor {near / far:.1e} "
        "(the JSD has saturated at log 2 = 0.693147), while dW1/dtheta stays 1: W1 = |theta| "
        "for two Gaussians of one shape, and still tells the generator which way to move. "
        "For point masses (s -> 0) the JSD is log 2 for every theta != 0, so its gradient is "
        "exactly 0, and W1 is still |theta|.",
    ]
    return "\n".join(lines)


def save_game_figure(simultaneous: Any, alternating: Any, path: Path) -> None:
    from mp_keras.plots import _pyplot, write_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(*simultaneous.T, ".-", color="tab:red", markersize=3, linewidth=0.8,
            label="simultaneous: radius x sqrt(1 + eta^2) per step")  # fmt: skip
    ax.plot(*alternating.T, ".-", color="tab:blue", markersize=3, linewidth=0.8,
            label="alternating: a closed ellipse")  # fmt: skip
    ax.plot([0], [0], "k*", markersize=12, label="Nash equilibrium (0, 0)")
    ax.plot(*simultaneous[0], "ko", markersize=5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (minimises x y)")
    ax.set_ylabel("y (maximises x y)")
    ax.set_title(f"min_x max_y x y, eta = {ETA}, {GAME_STEPS} steps from (1, 0)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    write_figure(fig, path, dpi=110)


def game_text(simultaneous: Any, alternating: Any, path: Path) -> str:
    import numpy as np

    from mp_keras.tools import gan_theory as gt

    r_sim = np.hypot(*simultaneous.T)
    r_alt = np.hypot(*alternating.T)
    q = gt.alternating_invariant(alternating, ETA)
    return "\n".join(
        [
            "**The Nash equilibrium is not found by gradient play** (8.2, training "
            "instability). On the bilinear game min_x max_y x y, whose only Nash "
            "equilibrium is (0, 0), simultaneous gradient steps x <- x - eta y, "
            "y <- y + eta x are a rotation scaled by sqrt(1 + eta^2): the players circle "
            "the equilibrium and drift away from it. Alternating steps (x first, then y "
            "against the new x) conserve Q = x^2 + y^2 - eta x y, so they orbit on an "
            "ellipse for ever, neither diverging nor converging. "
            f"eta = {ETA}, {GAME_STEPS} steps from (1, 0); figure `{path.relative_to(REPO)}`.",
            "",
            "| updates | radius after 100 steps | growth per step | max radius | Q range |",
            "|---|---|---|---|---|",
            f"| simultaneous | {r_sim[-1]:.4f} | {np.mean(r_sim[1:] / r_sim[:-1]):.8f} "
            f"(sqrt(1 + eta^2) = {math.sqrt(1 + ETA**2):.8f}) | {r_sim.max():.4f} | - |",
            f"| alternating | {r_alt[-1]:.4f} | - | {r_alt.max():.4f} (bound "
            f"sqrt(Q / (1 - eta/2)) = {math.sqrt(q[0] / (1 - ETA / 2)):.4f}) | "
            f"{np.ptp(q):.1e} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)

    import keras

    from mp_keras.tools import gan_theory as gt

    backend = keras.backend.backend()
    blocks = {}
    figure = FIGURES / "chapter8_optimal_discriminator.png"
    cases = discriminator_cases(args.seed)
    save_discriminator_figure(cases, figure)
    blocks["optimal_discriminator"] = discriminator_text(cases, backend, args.seed, figure)
    blocks["global_optimum"] = global_optimum_text()

    figure = FIGURES / "chapter8_js_wasserstein.png"
    curves = js_wasserstein(args.seed)
    save_js_wasserstein_figure(curves, figure)
    blocks["js_wasserstein"] = js_wasserstein_text(curves, figure)

    figure = FIGURES / "chapter8_bilinear_game.png"
    simultaneous = gt.simultaneous_gradient_play(1.0, 0.0, eta=ETA, steps=GAME_STEPS)
    alternating = gt.alternating_gradient_play(1.0, 0.0, eta=ETA, steps=GAME_STEPS)
    save_game_figure(simultaneous, alternating, figure)
    blocks["bilinear_game"] = game_text(simultaneous, alternating, figure)

    for key, text in blocks.items():
        print(text, end="\n\n")
        if not args.no_docs:
            write_section(DOCS, TAG, key, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
