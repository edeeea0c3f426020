"""Generated image-caption pairs for CLIP (chapter 9): ``captions``, one shape per image.

Each RGB image holds a single circle, square or triangle (drawn with the chapter 3
``shapes`` helpers) in one of three colours (red, green, blue), two sizes (small,
large) and four positions (its centre in the top/bottom x left/right quarter), over a
dark noisy background. Its caption says so in a closed vocabulary,
``"a large red triangle at the top left"``; with probability ``drop_prob`` each of the
size, colour, shape (then the noun is ``"shape"``) and position is left out of it, e.g.
``"a red shape"`` or ``"a circle at the bottom right"``, so that the one-attribute
prompts of zero-shot classification (:func:`caption_prompts`) are captions the model has
seen. The registered dataset's ``x`` are the images and ``y`` the token ids
(:func:`tokenize`), so ``model.fit(ds.x, ds.y)`` trains on the pairs; the attribute
labels of the same images come from :func:`captions_labels`. Everything is drawn from a
seed; train and test use independent streams (:func:`mp_keras.data.embedded.split_seed`).
Images are 32 x 32; ``captions_16`` draws the same pairs at 16 x 16, a quarter of the
pixels, which the ``text_diffusion`` recipe trains on (a CPU's budget).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from mp_keras.data.embedded import Dataset, check_num_examples, make_dataset, split_seed
from mp_keras.data.shapes import _shape_mask

IMAGE_SIZE = 32
SMALL_IMAGE_SIZE = 16  # ``captions_16``: the same pairs at a quarter of the pixels
CAPTIONS_SPLIT_SIZES: dict[str, int] = {"train": 4000, "test": 800}
DROP_PROB = 0.3
NOISE_STD = 0.05

# Attribute -> class names, in label order.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle"),
    "colour": ("red", "green", "blue"),
    "size": ("small", "large"),
    "position": ("top left", "top right", "bottom left", "bottom right"),
}
PAD = "<pad>"
VOCABULARY: tuple[str, ...] = (
    PAD,  # id 0: padding, masked out by the text encoder
    "a",
    "shape",
    *ATTRIBUTES["shape"],
    *ATTRIBUTES["size"],
    *ATTRIBUTES["colour"],
    "at",
    "the",
    "top",
    "bottom",
    "left",
    "right",
)
PAD_ID = 0
MAX_LENGTH = 8  # "a large red triangle at the top left"
_WORD_IDS = {word: i for i, word in enumerate(VOCABULARY)}

# Size of each shape as a fraction of the image side (circle radius; the square's
# half-side and the triangle's circumradius are scaled so the three areas are alike).
_SIZE_FRACTIONS = {0: (0.09, 0.11), 1: (0.19, 0.23)}
_SHAPE_SCALE = {1: 1.0, 2: 0.9, 3: 1.35}
_UPRIGHT = 1.5 * np.pi  # triangles point up: one shape per word, not per rotation

CAPTIONS_DESCRIPTION = (
    f"Generated {IMAGE_SIZE}x{IMAGE_SIZE}x3 images of one red/green/blue, small/large "
    "circle, square or triangle in one of four quarters; y: token ids of its caption "
    f"('a large red triangle at the top left', attributes dropped with p={DROP_PROB}); "
    "4,000 train / 800 test."
)
CAPTIONS_16_DESCRIPTION = (
    f"The captions pairs drawn at {SMALL_IMAGE_SIZE}x{SMALL_IMAGE_SIZE}x3 (the same labels "
    "and captions; a quarter of the pixels, for text-conditioned diffusion on a CPU)."
)


def caption(shape: int, colour: int, size: int, position: int, keep: Sequence[bool]) -> str:
    """The caption of one image from its attribute labels.

    Args:
        shape, colour, size, position: Labels, indices into :data:`ATTRIBUTES`.
        keep: Four booleans, whether the size, colour, shape and position are mentioned.

    Returns:
        The caption, e.g. ``"a large red triangle at the top left"``.

    Example:
        >>> caption(2, 0, 1, 0, [True] * 4)
        'a large red triangle at the top left'
        >>> caption(0, 2, 0, 3, [False, True, False, False])
        'a blue shape'
    """
    keep_size, keep_colour, keep_shape, keep_position = (bool(k) for k in keep)
    words = ["a"]
    if keep_size:
        words.append(ATTRIBUTES["size"][size])
    if keep_colour:
        words.append(ATTRIBUTES["colour"][colour])
    words.append(ATTRIBUTES["shape"][shape] if keep_shape else "shape")
    if keep_position:
        words += ["at", "the", *ATTRIBUTES["position"][position].split()]
    return " ".join(words)


def tokenize(captions: str | Sequence[str], max_length: int = MAX_LENGTH) -> np.ndarray:
    """Token ids of captions, padded with :data:`PAD_ID` to ``max_length``.

    Args:
        captions: One caption or a sequence of them; words are separated by spaces and
            must be in :data:`VOCABULARY`.
        max_length: Length of each row.

    Returns:
        int32 ``(len(captions), max_length)``.

    Raises:
        ValueError: On a word outside the vocabulary (named in the message), an empty
            caption, or one longer than ``max_length`` words.

    Example:
        >>> tokenize(["a red circle", "a shape at the top left"])
        array([[ 1,  8,  3,  0,  0,  0,  0,  0],
               [ 1,  2, 11, 12, 13, 15,  0,  0]], dtype=int32)
    """
    if isinstance(captions, str):
        captions = [captions]
    tokens = np.full((len(captions), int(max_length)), PAD_ID, np.int32)
    for row, text in enumerate(captions):
        if not isinstance(text, str):
            raise ValueError(f"Captions must be strings; caption {row} is {text!r}.")
        words = text.split()
        unknown = sorted({w for w in words if w not in _WORD_IDS or w == PAD})
        if unknown:
            raise ValueError(
                f"Caption {row} ({text!r}) has words outside the captions vocabulary: "
                f"{unknown}. Known words: {', '.join(VOCABULARY[1:])}."
            )
        if not words:
            raise ValueError(f"Caption {row} is empty.")
        if len(words) > max_length:
            raise ValueError(
                f"Caption {row} ({text!r}) has {len(words)} words; max_length is {max_length}."
            )
        tokens[row, : len(words)] = [_WORD_IDS[w] for w in words]
    return tokens


def detokenize(tokens: np.ndarray) -> list[str]:
    """Captions of token ids (padding dropped); the inverse of :func:`tokenize`.

    Example:
        >>> detokenize(tokenize(["a small green square", "a circle"]))
        ['a small green square', 'a circle']
    """
    tokens = np.asarray(tokens)
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(
            f"detokenize expects integer token ids (batch, length); got {tokens.dtype} "
            f"of shape {tokens.shape}."
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= len(VOCABULARY)):
        raise ValueError(f"Token ids must be in [0, {len(VOCABULARY)}); got {tokens.max()}.")
    return [" ".join(VOCABULARY[t] for t in row if t != PAD_ID) for row in tokens]


def _check_attribute(attribute: str) -> str:
    if attribute not in ATTRIBUTES:
        raise ValueError(f"attribute must be one of {list(ATTRIBUTES)}, got {attribute!r}.")
    return attribute


def caption_prompts(attribute: str) -> list[str]:
    """The zero-shot prompts of one attribute, one per class in label order.

    Each names that attribute alone (the others left out, as the training captions do
    with probability ``drop_prob``): ``"a circle"``, ``"a red shape"``, ``"a small
    shape"``, ``"a shape at the top left"``.

    Example:
        >>> caption_prompts("shape")
        ['a circle', 'a square', 'a triangle']
        >>> caption_prompts("size")
        ['a small shape', 'a large shape']
    """
    _check_attribute(attribute)
    if attribute == "shape":
        return [f"a {name}" for name in ATTRIBUTES["shape"]]
    if attribute == "position":
        return [f"a shape at the {name}" for name in ATTRIBUTES["position"]]
    return [f"a {name} shape" for name in ATTRIBUTES[attribute]]


def _draw(
    rng: np.random.Generator, grid: np.ndarray, image_size: int, labels: Sequence[int]
) -> np.ndarray:
    shape, colour, size, position = labels
    radius = rng.uniform(*_SIZE_FRACTIONS[size]) * image_size * _SHAPE_SCALE[shape + 1]
    reach = radius + 1.0  # the whole shape inside the image
    half = image_size / 2
    # The centre lies in its quarter; the shape may cross into the neighbouring one.
    centre = np.empty(2)
    for axis, far in enumerate((position >= 2, position % 2 == 1)):
        low, high = (half + 0.5, image_size - reach) if far else (reach - 1.0, half - 1.5)
        centre[axis] = rng.uniform(low, max(low, high))
    mask = _shape_mask(shape + 1, centre, radius, _UPRIGHT, grid)
    image = np.full((image_size, image_size, 3), rng.uniform(0.0, 0.25))
    tint = np.full(3, rng.uniform(0.0, 0.15))
    tint[colour] = rng.uniform(0.7, 1.0)
    image[mask] = tint
    image = image + rng.normal(0.0, NOISE_STD, size=image.shape)
    return np.clip(image, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _generate_cached(
    num_examples: int, seed: int, image_size: int, drop_prob: float
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.mgrid[0:image_size, 0:image_size]).astype(np.float64)
    sizes = [len(ATTRIBUTES[a]) for a in ("shape", "colour", "size", "position")]
    labels = np.stack([rng.integers(0, k, num_examples) for k in sizes], axis=1)
    keep = rng.random((num_examples, 4)) >= drop_prob
    images = np.empty((num_examples, image_size, image_size, 3), np.float32)
    texts = []
    for n in range(num_examples):
        images[n] = _draw(rng, grid, image_size, labels[n])
        texts.append(caption(*labels[n], keep=keep[n]))
    tokens = tokenize(texts)
    named = dict(zip(("shape", "colour", "size", "position"), labels.T.astype(np.int32)))
    for array in (images, tokens, *named.values()):
        array.setflags(write=False)
    return images, tokens, named


def generate_captions(
    num_examples: int,
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
    drop_prob: float = DROP_PROB,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Draws images of one coloured shape each, their captions' tokens and their labels.

    Args:
        num_examples: Number of images.
        seed: Seed of ``np.random.default_rng``; equal seeds give equal arrays.
        image_size: Height and width in pixels (at least 16).
        drop_prob: Probability that each of size, colour, shape and position is left out
            of a caption; 0 gives full captions (as retrieval is measured on).

    Returns:
        ``images`` float32 ``(num_examples, image_size, image_size, 3)`` in [0, 1],
        ``tokens`` int32 ``(num_examples, MAX_LENGTH)`` and ``labels``, a dict from each
        attribute of :data:`ATTRIBUTES` to int32 ``(num_examples,)`` class indices.

    Example:
        >>> x, tokens, labels = generate_captions(3, seed=0, image_size=16, drop_prob=0.0)
        >>> x.shape, tokens.shape, sorted(labels)
        ((3, 16, 16, 3), (3, 8), ['colour', 'position', 'shape', 'size'])
        >>> len(detokenize(tokens)[0].split())
        8
    """
    check_num_examples(num_examples)
    if num_examples is None:
        raise ValueError("num_examples must be a positive integer, got None.")
    if int(image_size) != image_size or image_size < 16:
        raise ValueError(f"image_size must be an integer of at least 16, got {image_size!r}.")
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob!r}.")
    images, tokens, labels = _generate_cached(
        int(num_examples), int(seed), int(image_size), float(drop_prob)
    )
    return images.copy(), tokens.copy(), {k: v.copy() for k, v in labels.items()}


def _split_arrays(
    split: str, seed: int, num_examples: int | None, image_size: int = IMAGE_SIZE
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    check_num_examples(num_examples)
    if split != "all":
        count = CAPTIONS_SPLIT_SIZES[split] if num_examples is None else num_examples
        return generate_captions(count, split_seed(seed, split), image_size)
    # Train then test in the default 5:1 ratio, as the other generated datasets.
    total = sum(CAPTIONS_SPLIT_SIZES.values()) if num_examples is None else num_examples
    num_test = total // 6
    parts = [generate_captions(total - num_test, split_seed(seed, "train"), image_size)]
    if num_test:
        parts.append(generate_captions(num_test, split_seed(seed, "test"), image_size))
    images = np.concatenate([p[0] for p in parts])
    tokens = np.concatenate([p[1] for p in parts])
    labels = {k: np.concatenate([p[2][k] for p in parts]) for k in ATTRIBUTES}
    return images, tokens, labels


def captions_labels(
    split: str = "test", seed: int = 0, num_examples: int | None = None
) -> dict[str, np.ndarray]:
    """The attribute labels of the images of ``data.load("captions", split, ...)``, and
    of ``"captions_16"``'s (the labels are drawn before the images, whatever their size).

    Example:
        >>> labels = captions_labels("test", num_examples=5)
        >>> labels["shape"].shape, int(labels["position"].max()) < 4
        ((5,), True)
    """
    return _split_arrays(split, seed, num_examples)[2]


def _load_captions(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    image_size = SMALL_IMAGE_SIZE if name == "captions_16" else IMAGE_SIZE
    images, tokens, _ = _split_arrays(split, seed, num_examples, image_size)
    return make_dataset(
        name,
        images,
        tokens,
        num_classes=len(VOCABULARY),  # y holds token ids
        value_range=(0.0, 1.0),
        binary=False,
        description=DATASETS[name][1],
    )


# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    "captions": (_load_captions, CAPTIONS_DESCRIPTION),
    "captions_16": (_load_captions, CAPTIONS_16_DESCRIPTION),
}
