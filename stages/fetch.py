"""Stage 1, fetch: MNIST from the first source that works -> data/raw/*.npy (uint8).

Sources are tried in the order params.yaml gives; the arrays are held to MNIST's facts whichever
served, so the output is byte-identical and DVC never reruns downstream for nothing.
"""

from mnist_dvc.core.cache import download_cache
from mnist_dvc.core.errors import run_stage
from mnist_dvc.core.params import load_params
from mnist_dvc.data.raw import RAW_DIR, save_arrays
from mnist_dvc.data.sources import fetch_mnist, resolve_source


def main() -> None:
    params = load_params().fetch
    arrays = fetch_mnist([resolve_source(spec) for spec in params.sources], download_cache())
    save_arrays(RAW_DIR, arrays)
    print(f"fetch: wrote {RAW_DIR}/ ({', '.join(f'{k} {v.shape}' for k, v in arrays.items())})")


if __name__ == "__main__":
    run_stage(main)
