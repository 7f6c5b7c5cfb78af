"""Issue 8 lever: the size of the embedding, judged from the start to the end of the stage (BENCHMARKS.md 15d).

``python -m bench.latent_lever [desc|scdcc] [16,32,64]`` is ``python -m bench.config_lever <method>
latent_dim <sizes>``. Sections 15b/15c found the 50 PCs keeping what the 16- or 32-dimensional
embedding loses on data with uneven types; a wider embedding is the pretraining-side test of that.
"""

from __future__ import annotations

import sys

from .config_lever import main as config_lever


def main(method: str = "desc", sizes: str = "16,32,64") -> None:
    config_lever(method, "latent_dim", sizes)


if __name__ == "__main__":
    main(*sys.argv[1:])
