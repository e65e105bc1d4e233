"""What the serving CPU can do, for choices that change speed or numbers: int8 weight width, bf16.

x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8 activations by int8 weights with
VPMADDUBSW, whose int16 pair sums saturate when the weights use all 8 bits; VNNI (AVX-VNNI,
AVX512-VNNI) and AMX accumulate in int32 and do not. Measured on MiniLM (README): on AVX2, 8-bit
weights shift predictions (dev F1 +0.5 to +0.8, 10% fewer relations); on AVX-512 VNNI + AMX, 7-bit
weights cost 0.62 F1 against 8-bit ones. AMX also runs bf16 matrix products natively.
"""
from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuInfo:
    model: str
    machine: str  # platform.machine(): x86_64, aarch64...
    flags: frozenset[str]

    @property
    def arm(self) -> bool:
        return self.machine.lower() in ("aarch64", "arm64") or self.machine.lower().startswith("arm")

    @property
    def amx(self) -> bool:
        return {"amx_tile", "amx_int8"} <= self.flags

    @property
    def vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni", "avx_vnni_int8"} & self.flags) or self.amx

    @property
    def kind(self) -> str:
        """AMX, AVX-512 VNNI, AVX-VNNI, AVX-512, AVX2, ARM or x86-64: what decides the int8 and bf16 paths."""
        if self.arm:
            return "ARM"
        if self.amx:
            return "AMX"
        if "avx512_vnni" in self.flags:
            return "AVX-512 VNNI"
        if "avx_vnni" in self.flags:
            return "AVX-VNNI"
        if "avx512f" in self.flags:
            return "AVX-512"
        return "AVX2" if "avx2" in self.flags else "x86-64"

    @property
    def int8_weight_bits(self) -> int:
        """The widest int8 weights that do not saturate here: 8 with VNNI, AMX or on ARM, else 7."""
        return 8 if self.vnni or self.arm else 7

    @property
    def bf16(self) -> bool:
        """Native bf16 matrix products (AMX): torch's bf16 autocast is then faster than fp32."""
        return self.amx or "amx_bf16" in self.flags

    def describe(self) -> str:
        return f"{self.model} ({self.kind})"


def parse_cpuinfo(text: str, machine: str) -> CpuInfo:
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return CpuInfo(model or platform.processor() or machine, machine, frozenset(flags))


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU (from /proc/cpuinfo; model and machine only where that file is missing)."""
    path = Path("/proc/cpuinfo")
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return parse_cpuinfo(text, platform.machine())
