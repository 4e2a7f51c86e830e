from typing_extensions import Buffer

EXPONENTS: int

def align(start: int, end: int, step: int) -> tuple[int, int]:
    """Tempo's ``alignStart`` / ``alignEnd``."""

def interval_count(start: int, end: int, step: int) -> int:
    """Tempo's ``IntervalCount``."""

def aggregate(
    index: Buffer,
    ts: Buffer,
    values: Buffer | None,
    start: int,
    end: int,
    step: int,
    count: Buffer,
    total: Buffer,
    comp: Buffer,
    minimum: Buffer,
    maximum: Buffer,
) -> int:
    """Fold u32 ``index`` / i64 ``ts`` / f64 ``values`` rows into ``(series, step)`` f64
    arrays: count, compensated sum, minimum, maximum. Returns the rows inside the window."""

def log2_buckets(
    index: Buffer, ts: Buffer, values: Buffer, start: int, end: int, step: int, counts: Buffer
) -> int:
    """Count rows into u64 ``counts[series, step, ceil(log2(value))]`` (values >= 2)."""

def log2_bucketize(v: int) -> float:
    """Tempo's ``Log2Bucketize``."""

def log2_quantile(p: float, maxes: Buffer, counts: Buffer) -> float:
    """Tempo's ``Log2Quantile`` over f64 bucket bounds and i64 counts."""

def log2_quantiles(counts: Buffer, scale: float, qs: Buffer, out: Buffer) -> None:
    """``out[s, t, j]`` = ``Log2Quantile(qs[j])`` of ``counts[s, t]`` (bounds ``2^e/scale``)."""
