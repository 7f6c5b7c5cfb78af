"""Open an h5ad download in a real cellxgene and print what it offers:
``python -m bench.cellxgene_check /path/to/venv/bin/cellxgene [file.h5ad]``.

cellxgene is not a dependency (it pins its own stack): install it in a venv of its own
(``python -m venv /tmp/cxg && /tmp/cxg/bin/pip install cellxgene==1.3.0``). Without a file, the
built-in PBMC is clustered (DESC, short), one cluster is named and the download is written the
way the Explore page writes it. Prints one JSON line: layouts, obs columns, the columns whose
colours cellxgene took from the file, and whether it warned about the matrix format.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def export_demo(path: Path) -> None:
    import scdeep_core as sd
    from scdeep_core import annotation
    from scdeep_core.embedding import add_umap
    from scdeep_core.results import for_viewers

    adata = sd.datasets.load_builtin("pbmc68k_reduced")
    sd.fit(adata, sd.DESCConfig(n_clusters=8, pretrain_epochs=20, max_cluster_epochs=5), label_key="bulk_labels")
    add_umap(adata, "desc")
    annotation.rename(adata, annotation.start_annotation(adata, "desc"), "0", "B cells")
    for_viewers(adata, "desc").write_h5ad(path)


def main() -> None:
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tmp) / "export.h5ad"
        if len(sys.argv) <= 2:
            export_demo(path)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = Path(tmp) / "cellxgene.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [binary, "launch", str(path), "--port", str(port), "--host", "127.0.0.1"], stdout=out, stderr=out
            )
        try:
            api = f"http://127.0.0.1:{port}/api/v0.2"
            for _ in range(120):
                try:
                    schema = json.load(urllib.request.urlopen(f"{api}/schema", timeout=2))["schema"]
                    break
                except OSError:
                    time.sleep(1)
            else:
                raise RuntimeError("cellxgene did not start:\n" + log.read_text()[-2000:])
            colours = json.load(urllib.request.urlopen(f"{api}/colors", timeout=10))
            text = log.read_text()
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        json.dumps(
            {
                "layouts": [layout["name"] for layout in schema["layout"]["obs"]],
                "obs_columns": {c["name"]: c["type"] for c in schema["annotations"]["obs"]["columns"]},
                "colours_from_file": sorted(colours),
                "matrix_format_warning": "csr" in text.lower() or "slow" in text.lower(),
            }
        )
    )


if __name__ == "__main__":
    main()
