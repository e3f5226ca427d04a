"""Number types with a valid range, for the arguments of tasks, data modules, models and
callbacks: LightningCLI's parser (jsonargparse) refuses a value out of range in one line naming
the key, before a run folder or a W&B run exists.

``lr: PositiveFloat = 1e-3`` is checked when the config is parsed; at run time the argument is
a plain ``float``. jsonargparse.typing has types of the same names, but the values it parses
for them stay instances of those classes and travel into saved state (an optimizer's
``weight_decay``, a scheduler's ``warmup_steps``): ``torch.load(weights_only=True)``, as a
resumed fit loads its checkpoint, refuses them, and ``yaml.safe_dump`` cannot write them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from jsonargparse.typing import register_type


class _RangedNumber:
    """A number type that jsonargparse checks; calling it gives the plain int or float."""

    # The noun of a one-sided range ("a positive float"); a two-sided one is said as an interval.
    _noun: ClassVar[str] = ""
    _lower: ClassVar[tuple[float, bool] | None] = None  # (bound, inclusive)
    _upper: ClassVar[tuple[float, bool] | None] = None

    def __new__(cls, value: Any) -> Any:
        base = int if issubclass(cls, int) else float
        kind = "an int" if base is int else "a float"
        # As jsonargparse's own int and float: no bools, and no 3.0 for an int.
        if isinstance(value, bool) or (base is int and isinstance(value, float)):
            raise ValueError(f"{value} is not {kind}")
        try:
            number = base(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not {kind}") from None
        if not cls.contains(number):
            raise ValueError(f"{number} is not {cls.describe()}")
        return number

    @classmethod
    def contains(cls, number: float) -> bool:
        """Whether ``number`` lies in the range (NaN never does)."""
        lower_ok = cls._lower is None or (
            number >= cls._lower[0] if cls._lower[1] else number > cls._lower[0]
        )
        upper_ok = cls._upper is None or (
            number <= cls._upper[0] if cls._upper[1] else number < cls._upper[0]
        )
        return lower_ok and upper_ok

    @classmethod
    def describe(cls) -> str:
        """The range as the error message says it: ``a positive float (must be > 0)``,
        ``in [0, 1)``."""
        if cls._lower is not None and cls._upper is not None:
            (low, low_closed), (high, high_closed) = cls._lower, cls._upper
            return f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        one_side, sign = (cls._lower, ">") if cls._lower is not None else (cls._upper, "<")
        assert one_side is not None, "a number type has a bound"
        bound, closed = one_side
        return f"{cls._noun} (must be {sign}{'=' if closed else ''} {bound:g})"


if TYPE_CHECKING:
    # To a type checker each is the plain int or float it gives at run time (``lr:
    # PositiveFloat = 1e-3`` holds a float); only the parser sees the classes below.
    PositiveInt = int
    NonNegativeInt = int
    NumClasses = int
    PositiveFloat = float
    NonNegativeFloat = float
    ClosedUnitInterval = float
    RightOpenUnitInterval = float
    LeftOpenUnitInterval = float
    OpenUnitInterval = float
    NUMBER_TYPES: tuple[type[_RangedNumber], ...]
else:

    class PositiveInt(_RangedNumber, int):
        """An int >= 1: a size, a count of layers, a batch size."""

        _noun = "a positive int"
        _lower = (1, True)

    class NonNegativeInt(_RangedNumber, int):
        """An int >= 0: a count that may be zero (workers, warm-up steps, padding)."""

        _noun = "a non-negative int"
        _lower = (0, True)

    class NumClasses(_RangedNumber, int):
        """An int >= 2: the classes a classifier tells apart (torchmetrics' accuracy needs two)."""

        _noun = "a number of classes"
        _lower = (2, True)

    class PositiveFloat(_RangedNumber, float):
        """A float > 0: a learning rate, a temperature, a scale."""

        _noun = "a positive float"
        _lower = (0, False)

    class NonNegativeFloat(_RangedNumber, float):
        """A float >= 0: a weight decay, a loss weight, a mixing alpha."""

        _noun = "a non-negative float"
        _lower = (0, True)

    class ClosedUnitInterval(_RangedNumber, float):
        """A float in [0, 1]: a probability, a ratio of the peak learning rate."""

        _lower = (0, True)
        _upper = (1, True)

    class RightOpenUnitInterval(_RangedNumber, float):
        """A float in [0, 1): a dropout rate, a label smoothing (1 would leave no signal)."""

        _lower = (0, True)
        _upper = (1, False)

    class LeftOpenUnitInterval(_RangedNumber, float):
        """A float in (0, 1]: a nucleus-sampling mass (0 would leave no token)."""

        _lower = (0, False)
        _upper = (1, True)

    class OpenUnitInterval(_RangedNumber, float):
        """A float in (0, 1): a held-out fraction, which needs data on both sides."""

        _lower = (0, False)
        _upper = (1, False)

    NUMBER_TYPES = (
        PositiveInt,
        NonNegativeInt,
        NumClasses,
        PositiveFloat,
        NonNegativeFloat,
        ClosedUnitInterval,
        RightOpenUnitInterval,
        LeftOpenUnitInterval,
        OpenUnitInterval,
    )
    for _number_type in NUMBER_TYPES:
        # Dumped configs hold the plain number; parsing calls the type, which checks the range.
        register_type(_number_type, serializer=int if issubclass(_number_type, int) else float)
