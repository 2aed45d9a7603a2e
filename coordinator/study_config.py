"""A study as the coordinator runs it, read from Flower's run config (pyproject + overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.dashed import read_dashed, write_dashed
from contracts.instructions import StudyInstructions


class StudyConfigError(ValueError):
    """A run-config key is missing or has the wrong type (the key is named)."""


def _names(raw: object) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(raw).split(",") if s.strip())


_PARSERS = {
    "sites": _names,
    "fields": _names,
    "study_dir": lambda raw: Path(str(raw)),
}


@dataclass(frozen=True)
class StudyConfig:
    study_id: str
    task: str
    sites: tuple[str, ...]
    num_server_rounds: int = 3
    fraction_train: float = 1.0
    min_sites: int = 2
    strategy: str = "fedavg"
    target_epsilon: float = 3.0
    delta: float = 1e-5
    local_epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    study_dir: Path = Path("runs/study")
    fields: tuple[str, ...] = ()
    grant: str = ""
    round_timeout: float = 600.0
    #: Holdout evaluations the grant pays each site for (the last rounds are evaluated); a study
    #: without a broker (public benchmark data) gets the purposes' default.
    evaluations: int = 1
    #: Deployment only: "node_id=site,…" as registered at the SuperLink, so that a node that dies
    #: before its first reply is still named in the report (simulation: empty).
    node_sites: str = ""

    @property
    def node_site_map(self) -> dict[int, str]:
        pairs = (item.split("=", 1) for item in self.node_sites.split(",") if "=" in item)
        return {int(node): site for node, site in pairs}

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, object]) -> StudyConfig:
        config = cls(
            **read_dashed(cls, run_config, what="run config", error=StudyConfigError, parsers=_PARSERS)
        )
        if config.min_sites < 1 or config.min_sites > len(config.sites):
            raise StudyConfigError(f"min-sites = {config.min_sites} but {len(config.sites)} site(s) listed")
        return config

    def to_run_config(self) -> dict[str, str | int | float]:
        return write_dashed(self)

    def instructions(self) -> StudyInstructions:
        return StudyInstructions(
            study_id=self.study_id,
            task=self.task,
            num_rounds=self.num_server_rounds,
            local_epochs=self.local_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_grad_norm=self.max_grad_norm,
            target_epsilon=self.target_epsilon,
            delta=self.delta,
            seed=self.seed,
            fields=",".join(self.fields),
            grant=self.grant,
        )
