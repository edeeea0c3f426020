"""Generated sequence tasks of chapter 4, one per shape of recurrent network.

Every example is a string of digit tokens, stored as float32 token ids in ``x`` (the
convention of :class:`Dataset`; the models cast them back to integers), with int32
targets in ``y``:

* ``tagging`` (one-to-one per step, many-to-many of equal length): ``x`` is
  ``TAGGING_LENGTH`` digits; ``y[t]`` is the parity of the running sum
  ``x[0] + ... + x[t]``, so every label depends on the whole prefix.
* ``counting`` (one-to-many): ``x`` is one digit ``d``; ``y`` is
  ``d, d + 1, ..., d + COUNTING_LENGTH - 1`` modulo 10. There are only ten distinct
  examples; the splits repeat them (the task tests generation, not generalisation).
* ``majority`` (many-to-one): ``x`` is ``MAJORITY_LENGTH`` tokens from
  ``0 .. MAJORITY_TOKENS - 1`` with a unique most frequent token, which is the label.
* ``reverse`` and ``sort`` (many-to-many of different lengths, encoder-decoder): ``x`` is
  2 to ``SEQ2SEQ_MAX_LENGTH`` digits padded with ``END`` (token 10) to
  ``SEQ2SEQ_MAX_LENGTH``; ``y`` is the digits reversed (or sorted ascending) followed by
  ``END``, padded with ``END`` to ``SEQ2SEQ_MAX_LENGTH + 1``: an output one token longer
  than its input.

Train and test draw from independent streams of the seed (4,096 and 1,024 examples unless
``num_examples`` says otherwise).

Example:
    >>> from mp_keras import data
    >>> ds = data.load("reverse", "test", num_examples=2)
    >>> ds.x.shape, ds.y.shape, ds.info.num_classes
    ((2, 6), (2, 7), 11)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mp_keras.data.embedded import Dataset, check_num_examples, generate_splits, make_dataset

NUM_DIGITS = 10
END = 10  # ends (and pads) the strings of the encoder-decoder tasks

TAGGING_LENGTH = 12
COUNTING_LENGTH = 8
MAJORITY_LENGTH = 11
MAJORITY_TOKENS = 4
SEQ2SEQ_MIN_LENGTH = 2
SEQ2SEQ_MAX_LENGTH = 6

Sample = tuple[np.ndarray, np.ndarray]


def _sample_tagging(n: int, seed: int) -> Sample:
    digits = np.random.default_rng(seed).integers(0, NUM_DIGITS, size=(n, TAGGING_LENGTH))
    return digits, np.cumsum(digits, axis=1) % 2


def _sample_counting(n: int, seed: int) -> Sample:
    start = np.random.default_rng(seed).integers(0, NUM_DIGITS, size=(n, 1))
    return start, (start + np.arange(COUNTING_LENGTH)) % NUM_DIGITS


def _sample_majority(n: int, seed: int) -> Sample:
    rng = np.random.default_rng(seed)
    tokens = np.empty((0, MAJORITY_LENGTH), np.int64)
    # Rejection sampling of ties: about 60% of draws have a unique mode.
    while len(tokens) < n:
        draws = rng.integers(0, MAJORITY_TOKENS, size=(2 * n, MAJORITY_LENGTH))
        counts = (draws[:, :, None] == np.arange(MAJORITY_TOKENS)).sum(axis=1)
        unique_mode = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) == 1
        tokens = np.concatenate([tokens, draws[unique_mode]])
    tokens = tokens[:n]
    counts = (tokens[:, :, None] == np.arange(MAJORITY_TOKENS)).sum(axis=1)
    return tokens, counts.argmax(axis=1)


def _sample_strings(n: int, seed: int, transform: Callable[[np.ndarray], np.ndarray]) -> Sample:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(SEQ2SEQ_MIN_LENGTH, SEQ2SEQ_MAX_LENGTH + 1, size=n)
    digits = rng.integers(0, NUM_DIGITS, size=(n, SEQ2SEQ_MAX_LENGTH))
    x = np.full((n, SEQ2SEQ_MAX_LENGTH), END)
    y = np.full((n, SEQ2SEQ_MAX_LENGTH + 1), END)
    for row, length in enumerate(lengths):
        x[row, :length] = digits[row, :length]
        y[row, :length] = transform(digits[row, :length])
    return x, y


def _sample_reverse(n: int, seed: int) -> Sample:
    return _sample_strings(n, seed, lambda digits: digits[::-1])


def _sample_sort(n: int, seed: int) -> Sample:
    return _sample_strings(n, seed, np.sort)


# name -> (sampler, number of target classes, largest token id in x)
_TASKS: dict[str, tuple[Callable[[int, int], Sample], int, int]] = {
    "tagging": (_sample_tagging, 2, NUM_DIGITS - 1),
    "counting": (_sample_counting, NUM_DIGITS, NUM_DIGITS - 1),
    "majority": (_sample_majority, MAJORITY_TOKENS, MAJORITY_TOKENS - 1),
    "reverse": (_sample_reverse, NUM_DIGITS + 1, END),
    "sort": (_sample_sort, NUM_DIGITS + 1, END),
}


def _load(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    check_num_examples(num_examples)
    sampler, num_classes, largest_token = _TASKS[name]
    x, y = generate_splits(sampler, split, seed, num_examples)
    return make_dataset(
        name,
        x,
        y,
        num_classes=num_classes,
        value_range=(0.0, float(largest_token)),
        binary=False,
        description=DATASETS[name][1],
    )


def num_tokens(info_or_name: object) -> int:
    """Size of the input vocabulary of a sequence task: its largest token id plus one.

    Args:
        info_or_name: A task name or the ``DatasetInfo`` of a loaded split.

    Returns:
        The number of distinct input tokens the models must embed.

    Example:
        >>> num_tokens("reverse"), num_tokens("majority")
        (11, 4)
    """
    if isinstance(info_or_name, str):
        return _TASKS[info_or_name][2] + 1
    return int(info_or_name.value_range[1]) + 1


def target_length(info_or_name: object) -> int:
    """Number of target tokens per example of a sequence task (`y.shape[1]`).

    Args:
        info_or_name: A task name or the ``DatasetInfo`` of a loaded split.

    Returns:
        The target length; 1 for ``majority`` (one label per sequence).

    Example:
        >>> target_length("counting"), target_length("reverse"), target_length("majority")
        (8, 7, 1)
    """
    name = info_or_name if isinstance(info_or_name, str) else info_or_name.name
    lengths = {
        "tagging": TAGGING_LENGTH,
        "counting": COUNTING_LENGTH,
        "majority": 1,
        "reverse": SEQ2SEQ_MAX_LENGTH + 1,
        "sort": SEQ2SEQ_MAX_LENGTH + 1,
    }
    if name not in lengths:
        raise ValueError(f"{name!r} is not a sequence task; expected one of {sorted(lengths)}.")
    return lengths[name]


# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    "tagging": (
        _load,
        f"Per-step tagging: {TAGGING_LENGTH} digits, label at each step = parity of the "
        "running sum; 4,096 train / 1,024 test sequences.",
    ),
    "counting": (
        _load,
        f"One-to-many: one digit d -> the {COUNTING_LENGTH} digits d, d+1, ... (mod 10).",
    ),
    "majority": (
        _load,
        f"Many-to-one: {MAJORITY_LENGTH} tokens from 0..{MAJORITY_TOKENS - 1}, label = the "
        "unique most frequent token; 4,096 train / 1,024 test sequences.",
    ),
    "reverse": (
        _load,
        f"Encoder-decoder: {SEQ2SEQ_MIN_LENGTH}..{SEQ2SEQ_MAX_LENGTH} digits (padded with "
        f"the end token {END}) -> the digits reversed, then the end token; 4,096 / 1,024.",
    ),
    "sort": (
        _load,
        f"Encoder-decoder: {SEQ2SEQ_MIN_LENGTH}..{SEQ2SEQ_MAX_LENGTH} digits (padded with "
        f"the end token {END}) -> the digits sorted, then the end token; 4,096 / 1,024.",
    ),
}
