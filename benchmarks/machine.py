"""What every benchmark records about the machine it ran on."""
import os
import platform
import sys
import time
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """1-minute load: timings on a shared machine mean little without it."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def describe(**extra) -> dict:
    """The machine block of a benchmark's JSON: the same keys everywhere, plus what this benchmark adds."""
    info = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_average": load_average()}
    torch = sys.modules.get("torch")   # only benchmarks that use torch pay for importing it
    if torch is not None:
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return {**info, **extra}


def cpu_flags() -> list[str]:
    """The CPU's AVX-512 and bf16 matrix-unit flags: what decides whether bf16 pays."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]
    except OSError:
        pass
    return []


def matmul_peak(dtype, n=2048, repeats=5) -> float:
    """Best GFLOP/s of an n x n matrix product in this dtype (the machine's practical peak, in this run)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best
