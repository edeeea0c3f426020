"""Masked autoencoder for distribution estimation (notes, section 6.3)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers.masked_dense import MaskedDense
from mp_keras.models._checks import check_count
from mp_keras.models.density import BinaryAutoregressive, bernoulli_log_prob

ORDERINGS = ("natural", "random")


def made_degrees(
    input_degrees: Sequence[int], hidden_units: Sequence[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Degrees m^l of the hidden units of each layer, drawn as in Germain et al. (2015).

    Unit k of hidden layer l gets m^l(k) uniform in `[min_j m^(l-1)(j), n - 1]`: never
    below the smallest degree of the layer beneath (a unit below it would see no input
    and be dead), never n (a unit of degree n could reach no output). With n = 1 there
    is no valid degree and every hidden unit gets 0 (it sees no input).

    Args:
        input_degrees: ints. m^0, the position (1 ... n) of each input in the ordering.
        hidden_units: ints. Size of each hidden layer.
        rng: NumPy generator the degrees are drawn from.

    Example:
    >>> degrees = made_degrees([1, 2, 3], [4], np.random.default_rng(0))
    >>> bool(((degrees[0] >= 1) & (degrees[0] <= 2)).all())
    True
    """
    n = len(input_degrees)
    previous = np.asarray(input_degrees, dtype="int64")
    degrees = []
    for units in hidden_units:
        low = min(int(previous.min()), n - 1)
        previous = rng.integers(low, n, size=int(units), dtype="int64")
        degrees.append(previous)
    return degrees


def made_masks(
    input_degrees: Sequence[int], hidden_degrees: Sequence[Sequence[int]]
) -> list[np.ndarray]:
    """The MADE masks of the notes (section 6.3), in Keras' kernel orientation (in, out).

    Hidden layer l: `M^W[j, i] = 1{m^(l-1)(j) <= m^l(i)}` (input j may reach unit i);
    output: `M^V[j, i] = 1{m^L(j) < m^0(i)}`, strictly, so output i sees only inputs
    before i in the ordering. (The notes index `M_ij` as [output, input]; these are the
    transposes, the shape of a `Dense` kernel.)

    Args:
        input_degrees: ints. m^0, the position (1 ... n) of each input in the ordering.
        hidden_degrees: one sequence of ints per hidden layer, m^1 ... m^L.

    Returns:
        One float32 0/1 array per hidden layer, `(fan_in, units)`, then the output mask
        `(units_L, n)`.

    Example:
    >>> [m.astype(int).tolist() for m in made_masks([1, 2], [[1]])]
    [[[1], [0]], [[0, 1]]]
    """
    m0 = np.asarray(input_degrees)
    masks, previous = [], m0
    for degrees in hidden_degrees:
        degrees = np.asarray(degrees)
        masks.append((previous[:, None] <= degrees[None, :]).astype("float32"))
        previous = degrees
    masks.append((previous[:, None] < m0[None, :]).astype("float32"))
    return masks


@keras.saving.register_keras_serializable(package="mp_keras")
class MADE(BinaryAutoregressive):
    """Masked autoencoder for distribution estimation: one pass gives every conditional.

    Germain, Gregor, Murray & Larochelle, "MADE: Masked Autoencoder for Distribution
    Estimation", ICML 2015 (notes, section 6.3). An MLP from x to the logits of
    p(x_i = 1 | x_<i), whose weights are multiplied by binary masks (`MaskedDense`)
    so that no path joins output i to an input at or after i in the ordering: each
    input gets its position m^0 in the ordering, each hidden unit a degree m^l
    (`made_degrees`), and the masks follow `made_masks`.

    With `num_masks=K > 1`, K connectivities (hidden degrees and, with
    `ordering="random"`, orderings) are drawn once from `mask_seed`. Training is
    *connectivity-agnostic*: each training step draws one of the K masks (a
    `SeedGenerator` draw inside the loss, selected with `ops.take`, so it compiles on
    every backend); `mask_counts` counts the steps each mask was drawn. `log_prob(x)`
    is then the order-agnostic ensemble log (1/K) sum_k p_k(x); `log_prob(x,
    mask_index=k)` uses one mask. `call`, `ordering()` and `sample` use mask 0 unless
    told otherwise.

    The masks are drawn in `__init__` from `mask_seed` (so a config rebuilds them) and
    stored as non-trainable weights of the layers, with the orderings, so a `.keras`
    file keeps exactly the masks the model was trained with.

    Args:
        input_shape: tuple of ints. Shape of one binary example, e.g. `(28, 28, 1)`.
        hidden_units: tuple of ints (or one int). Size of each hidden layer; `()` leaves
            the output mask alone, an FVSBN. Defaults to `(500,)`, the paper's one-layer
            MADE.
        ordering: str. `"natural"` (row-major) or `"random"` (a permutation per mask).
            Defaults to `"natural"`.
        num_masks: int. Number of connectivities K trained and ensembled. Defaults to `1`.
        mask_seed: int. Seed of the degrees and orderings. Defaults to `0`.
        activation: str. Activation of the hidden layers. Defaults to `"relu"`.
        direct_connections: bool. Add a masked linear path from the inputs to the
            logits, `sum_{j before i} A_ij x_j` (an FVSBN inside the MADE): every output
            then sees its immediate predecessors, which the hidden layer reaches only
            through the few units of the right degree (about 500/n per degree with
            500 units). See docs/chapter6.md for what it is worth on binarized MNIST.
            Defaults to `False`, the notes' MADE.
        seed: int or None. Seed of the initial weights, of the mask drawn at each
            training step and of the sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = MADE(input_shape=(4, 4, 1), hidden_units=(32,), num_masks=2, seed=0)
    >>> model.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((32, 4, 4, 1)) > 0.5).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> int(keras.ops.convert_to_numpy(model.mask_counts).sum())  # one mask per step
    2
    >>> tuple(model.log_prob(x[:3]).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        hidden_units: Sequence[int] = (500,),
        ordering: str = "natural",
        num_masks: int = 1,
        mask_seed: int = 0,
        activation: str = "relu",
        direct_connections: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("num_classes", None)  # unconditional
        super().__init__(input_shape=input_shape, seed=seed, **kwargs)
        owner = type(self).__name__
        if ordering not in ORDERINGS:
            raise ValueError(f"{owner}: ordering must be one of {ORDERINGS}; got {ordering!r}.")
        if isinstance(mask_seed, bool) or not isinstance(mask_seed, (int, np.integer)):
            raise ValueError(f"{owner}: mask_seed must be an int; got {mask_seed!r}.")
        if isinstance(hidden_units, (int, np.integer)):
            hidden_units = (hidden_units,)
        self.hidden_units = tuple(
            check_count(owner, "hidden_units", units) for units in hidden_units
        )
        self.ordering_type = ordering
        self.num_masks = check_count(owner, "num_masks", num_masks)
        self.mask_seed = int(mask_seed)
        self.activation = activation
        if not isinstance(direct_connections, (bool, np.bool_)):
            raise ValueError(
                f"{owner}: direct_connections must be True or False; got {direct_connections!r}."
            )
        self.direct_connections = bool(direct_connections)
        n = self.num_dims

        # === Connectivities ===
        rng = np.random.default_rng(self.mask_seed)
        orders, layer_masks, direct_masks = [], [], []
        for _ in range(self.num_masks):
            order = rng.permutation(n) if ordering == "random" else np.arange(n)
            m0 = np.empty(n, "int64")
            m0[order] = np.arange(1, n + 1)  # input order[k] is the (k + 1)-th generated
            orders.append(order)
            layer_masks.append(made_masks(m0, made_degrees(m0, self.hidden_units, rng)))
            direct_masks.append(made_masks(m0, [])[0])  # input j -> output i iff j before i
        stacks = [np.stack(per_mask) for per_mask in zip(*layer_masks)]  # (K, in, out)

        # === Layers ===
        def init(index: int) -> keras.initializers.Initializer:
            return keras.initializers.GlorotUniform(None if seed is None else seed + index)

        self.hidden_layers = [
            MaskedDense(
                units,
                stack,
                activation=activation,
                kernel_initializer=init(index),
                name=f"hidden_{index}",
            )
            for index, (units, stack) in enumerate(zip(self.hidden_units, stacks))
        ]
        self.output_layer = MaskedDense(
            n, stacks[-1], kernel_initializer=init(len(self.hidden_units)), name="logits"
        )
        # One ordering shared by every mask (natural) needs a single n x n direct mask.
        direct_mask = direct_masks[0] if ordering == "natural" else np.stack(direct_masks)
        self.direct_layer = (
            MaskedDense(n, direct_mask, use_bias=False, kernel_initializer="zeros", name="direct")
            if self.direct_connections
            else None
        )
        for layer in [*self.hidden_layers, self.output_layer, self.direct_layer]:
            if layer is not None:
                layer.build((None, layer.input_dim))
        self.orderings = self.add_weight(
            shape=(self.num_masks, n),
            initializer=np.stack(orders).astype("int32"),
            dtype="int32",
            trainable=False,
            name="orderings",
        )
        self.mask_counts = self.add_weight(
            shape=(self.num_masks,),
            initializer=np.zeros(self.num_masks, "int32"),
            dtype="int32",
            trainable=False,
            name="mask_counts",
        )
        self.mask_generator = keras.random.SeedGenerator(seed)
        self._mask_index = 0  # the mask of call(), ordering() and sample()
        self.built = True

    # === Masks ===

    def masks(self, mask_index: int | None = None) -> list[np.ndarray]:
        """The masks of every layer, `(K, in, out)` each, or `(in, out)` for one index."""
        stacks = [layer.masks() for layer in [*self.hidden_layers, self.output_layer]]
        if mask_index is None:
            return stacks
        index = self._check_mask_index(mask_index)
        return [stack[index] for stack in stacks]

    def ordering(self, mask_index: int | None = None) -> np.ndarray:
        """Flat indices in the order mask `mask_index` generates them (default: mask 0)."""
        index = self._mask_index if mask_index is None else self._check_mask_index(mask_index)
        return np.asarray(ops.convert_to_numpy(self.orderings))[index].astype("int64")

    def _check_mask_index(self, mask_index: Any) -> int:
        if (
            isinstance(mask_index, bool)
            or not isinstance(mask_index, (int, np.integer))
            or not 0 <= mask_index < self.num_masks
        ):
            raise ValueError(
                f"{type(self).__name__} has {self.num_masks} masks; mask_index must be an int "
                f"in [0, {self.num_masks}), got {mask_index!r}."
            )
        return int(mask_index)

    def _training_mask(self) -> Any:
        """One mask index drawn uniformly (connectivity-agnostic training), counted."""
        index = keras.random.randint((), 0, self.num_masks, seed=self.mask_generator, dtype="int32")
        self.mask_counts.assign_add(ops.one_hot(index, self.num_masks, dtype="int32"))
        return index

    # === Density ===

    def conditional_logits(
        self, x: Any, condition: Any = None, training: bool = False, mask_index: Any = None
    ) -> Any:
        """Logits of p(x_i = 1 | x_<i) under one mask: `mask_index`, or in training a
        random one, else mask 0 (or the one being sampled)."""
        self.check_inputs(x)
        if mask_index is None:
            mask_index = self._training_mask() if training else self._mask_index
        elif isinstance(mask_index, (int, np.integer)):
            mask_index = self._check_mask_index(mask_index)
        flat = ops.reshape(x, (-1, self.num_dims))  # (batch, n)
        h = flat
        for layer in self.hidden_layers:
            h = layer(h, mask_index=mask_index)  # (batch, units)
        logits = self.output_layer(h, mask_index=mask_index)  # (batch, n)
        if self.direct_layer is not None:  # + sum_{j before i} A_ij x_j, an FVSBN
            stacked = self.direct_layer.stacked
            logits = logits + self.direct_layer(flat, mask_index=mask_index if stacked else None)
        return ops.reshape(logits, ops.shape(x))

    def log_prob(
        self, x: Any, condition: Any = None, training: bool = False, mask_index: Any = None
    ) -> Any:
        """log p(x) in nats, shape `(batch,)`: with `mask_index`, or in training, one
        mask's exact likelihood; otherwise the ensemble log (1/K) sum_k p_k(x)."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        if training or mask_index is not None or self.num_masks == 1:
            logits = self.conditional_logits(x, training=training, mask_index=mask_index)
            return bernoulli_log_prob(x, logits)
        per_mask = ops.stack(
            [
                bernoulli_log_prob(x, self.conditional_logits(x, mask_index=k))
                for k in range(self.num_masks)
            ]
        )  # (K, batch)
        return ops.logsumexp(per_mask, axis=0) - math.log(self.num_masks)

    def sample(
        self, num: int, seed: int | None = None, condition: Any = None, mask_index: int = 0
    ) -> Any:
        """Ancestral sampling in the ordering of mask `mask_index` (see the base class)."""
        index = self._check_mask_index(mask_index)
        previous, self._mask_index = self._mask_index, index
        try:
            return super().sample(num, seed, condition)
        finally:
            self._mask_index = previous

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("num_classes")
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "ordering": self.ordering_type,
                "num_masks": self.num_masks,
                "mask_seed": self.mask_seed,
                "activation": self.activation,
                "direct_connections": self.direct_connections,
            }
        )
        return config
