"""The addition task: character-level strings "123+456=579", for decoder-only models.

Every example is one string over a fixed vocabulary of 14 tokens, ids 0-9 the digits,
then ``+`` (10), ``=`` (11), an end token (12) and padding (13):

    a + b = c <end> <pad> ...

The operands are written with ``digits`` digits, zero-padded ("007+045="), so every
*prompt* ``a+b=`` has the same length ``2 * digits + 2``; the answer c = a + b is written
without leading zeros and ended by ``<end>``, and the string is padded to
``sequence_length(digits) = 3 * digits + 4`` tokens. A language model of these strings
that learns the rule answers ``a+b=`` for pairs it never saw.

The split is over *pairs*: all (a, b) with 0 <= a, b < 10**digits are permuted once with
``seed`` and the first ``test_fraction`` of them are held out, so no test pair appears in
training (its mirror b + a may). Arrays of token ids are float32 in ``Dataset.x``, like the
other sequence tasks.

Example:
    >>> x = encode([7, 12], [45, 99], digits=2)
    >>> decode(x)
    ['07+45=52', '12+99=111']
    >>> x.shape, x[0, -3:].tolist()  # ... '2', <end>, <pad>
    ((2, 10), [2, 12, 13])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mp_keras.data.embedded import Dataset, check_num_examples, check_split, make_dataset

PLUS, EQUALS, END, PAD = 10, 11, 12, 13
VOCABULARY = (*"0123456789", "+", "=", "<end>", "<pad>")
VOCAB_SIZE = len(VOCABULARY)
TEST_FRACTION = 0.1
_TEXT = {PLUS: "+", EQUALS: "=", END: "", PAD: ""}


def _check_digits(digits: int) -> int:
    if (
        isinstance(digits, bool)
        or not isinstance(digits, (int, np.integer))
        or not 1 <= digits <= 6
    ):
        raise ValueError(f"digits must be an int from 1 to 6, got {digits!r}.")
    return int(digits)


def prompt_length(digits: int) -> int:
    """Tokens of the prompt ``a+b=``: ``2 * digits + 2``.

    Example:
        >>> prompt_length(3)
        8
    """
    return 2 * _check_digits(digits) + 2


def sequence_length(digits: int) -> int:
    """Tokens of a whole string: the prompt, up to ``digits + 1`` answer digits, ``<end>``.

    Example:
        >>> sequence_length(3)  # "999+999=1998" and <end>
        13
    """
    return prompt_length(digits) + _check_digits(digits) + 2


def _digits_of(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits, most significant first, zero-padded: `(N, width)`."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers[None, :]) % 10


def encode(a: Sequence[int], b: Sequence[int], digits: int) -> np.ndarray:
    """The token ids of the strings "a+b=c<end><pad>...", int32 `(N, sequence_length)`.

    Example:
        >>> encode([3], [4], digits=1).tolist()
        [[3, 10, 4, 11, 7, 12, 13]]
    """
    digits = _check_digits(digits)
    a, b = np.asarray(a, np.int64).reshape(-1), np.asarray(b, np.int64).reshape(-1)
    if a.shape != b.shape or a.min(initial=0) < 0 or b.min(initial=0) < 0:
        raise ValueError("encode expects two equally long sequences of non-negative ints.")
    if max(a.max(initial=0), b.max(initial=0)) >= 10**digits:
        raise ValueError(
            f"operands must have at most {digits} digits, got values up to {max(a.max(), b.max())}."
        )
    n = len(a)
    tokens = np.full((n, sequence_length(digits)), PAD, np.int32)
    tokens[:, :digits] = _digits_of(a, digits)
    tokens[:, digits] = PLUS
    tokens[:, digits + 1 : 2 * digits + 1] = _digits_of(b, digits)
    tokens[:, 2 * digits + 1] = EQUALS
    total = a + b
    answer = _digits_of(total, digits + 1)
    lengths = np.maximum(1, np.floor(np.log10(np.maximum(total, 1))).astype(int) + 1)
    start = prompt_length(digits)
    for row in range(n):  # variable answer lengths: one short copy per row
        k = lengths[row]
        tokens[row, start : start + k] = answer[row, digits + 1 - k :]
        tokens[row, start + k] = END
    return tokens


def decode(tokens: np.ndarray) -> list[str]:
    """The strings of token ids (`(N, L)`), stopping at the first end or padding token.

    Example:
        >>> decode(np.array([[1, 10, 2, 11, 3, 12, 13]]))
        ['1+2=3']
    """
    out = []
    for row in np.asarray(tokens).astype(np.int64):
        chars = []
        for token in row:
            if token in (END, PAD):
                break
            chars.append(_TEXT.get(int(token), str(int(token))))
        out.append("".join(chars))
    return out


def split_pairs(
    digits: int, split: str = "train", seed: int = 0, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """The operand pairs `(a, b)` of a split, in a fixed shuffled order.

    All ``10**digits`` squared pairs are permuted with ``seed``; the first
    ``test_fraction`` of the permutation is ``"test"``, the rest ``"train"``
    (``"all"``: both, train first). The two splits never share a pair.

    Example:
        >>> a, b = split_pairs(1, "test")
        >>> len(a), len(split_pairs(1, "train")[0])
        (10, 90)
    """
    digits, split = _check_digits(digits), check_split(split)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    side = 10**digits
    order = np.random.default_rng(seed).permutation(side * side)
    num_test = max(1, round(test_fraction * side * side))
    parts = {"test": order[:num_test], "train": order[num_test:]}
    index = np.concatenate([parts["train"], parts["test"]]) if split == "all" else parts[split]
    return index // side, index % side


def answer_accuracy(generated: np.ndarray, a: Sequence[int], b: Sequence[int]) -> float:
    """Fraction of strings whose answer (the text after ``=``, up to ``<end>``) is a + b.

    `generated` holds whole strings (prompt and answer), `(N, L)` token ids; an answer
    counts only if it is complete (ends with the end token) and has no other token.

    Example:
        >>> answer_accuracy(encode([1, 2], [3, 4], digits=1), [1, 2], [3, 5])
        0.5
    """
    generated = np.asarray(generated).astype(np.int64)
    digits = (generated.shape[1] - 4) // 3
    truth = encode(a, b, digits)
    start = prompt_length(digits)
    right = 0
    for row, expected in zip(generated, truth):
        end = int(np.argmax(expected[start:] == END)) + start
        right += bool(np.array_equal(row[start : end + 1], expected[start : end + 1]))
    return right / max(len(generated), 1)


def load_addition(
    digits: int = 2, split: str = "train", seed: int = 0, num_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids (int32 `(N, L)`) and operands `a`, `b` of a split, `num_examples` first.

    Example:
        >>> x, a, b = load_addition(2, "test", num_examples=3)
        >>> x.shape, bool(((a < 100) & (b < 100)).all())
        ((3, 10), True)
    """
    check_num_examples(num_examples)
    a, b = split_pairs(digits, split, seed)
    a, b = a[:num_examples], b[:num_examples]
    return encode(a, b, digits), a, b


def _load(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    digits = _DIGITS[name]
    x, _, _ = load_addition(digits, split, seed, num_examples)
    return make_dataset(
        name,
        x,
        None,
        num_classes=None,
        value_range=(0.0, float(VOCAB_SIZE - 1)),
        binary=False,
        description=DATASETS[name][1],
    )


_DIGITS = {"addition": 2, "addition3": 3}

# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    name: (
        _load,
        f'Addition strings "a+b=c" of {d}-digit operands as {VOCAB_SIZE} token ids (digits, '
        f"+, =, end, pad), length {sequence_length(d)}; {TEST_FRACTION:.0%} of the pairs "
        "held out for the test split.",
    )
    for name, d in _DIGITS.items()
}
