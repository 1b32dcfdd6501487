"""The files a manifest's environment reads: offline RL's HDF5 dataset, a contextual bandit's feature and target
tables. There is no dataset hub on-prem: they live in the checkpoint storage, and the operator mounts each file the
manifest names (read-only, at the path it names) into the worker. A missing one is named here, before AgileRL
builds anything, with the field and where such files go, rather than as pandas' or h5py's error mid-build."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FIELDS = ("dataset_path", "features", "targets")


class DatasetNotFound(FileNotFoundError):
    def __init__(self, field: str, path: str, why: str) -> None:
        super().__init__(f"environment.{field}: {path} {why}")
        self.field = field
        self.path = path


def check_dataset_files(environment: Any) -> list[Path]:
    """Each dataset file the environment section names, after checking that it is a readable file."""
    files: list[Path] = []
    for field in FIELDS:
        value = getattr(environment, field, None)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value)
        if not path.exists():
            raise DatasetNotFound(field, value, "does not exist in this worker")
        if not path.is_file():
            raise DatasetNotFound(field, value, "is not a file")
        if not os.access(path, os.R_OK):
            raise DatasetNotFound(field, value, "cannot be read")
        files.append(path)
    return files


def where_datasets_go(env: dict[str, str]) -> str:
    """The hint: where in the checkpoint storage the worker can see dataset files."""
    checkpoints = env.get("ARENA_CHECKPOINT_DIR", "")
    namespace = env.get("ARENA_NAMESPACE")
    base = str(Path(checkpoints).parent) if checkpoints else "the checkpoint storage"
    scope = f" (the {namespace} namespace's folder)" if namespace else ""
    return (
        f"Put the file in the checkpoint storage under {base}/{scope} and name it by that path in the manifest; "
        "the operator mounts each dataset file a manifest names there into its workers."
    )
