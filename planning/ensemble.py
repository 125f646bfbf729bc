"""An ensemble of world models planned with as one: each candidate is rolled out by every member.

Members are runs trained on the same data and split with different seeds (``training.seed=K
training.split_seed=0``). They share the frozen image encoder (the same weights: its features are computed
once) and the frame / action layout; each keeps its own projection, predictor and state readout, so their
latents live in different spaces. The ensemble therefore concatenates the members' latents along the
channel dim: ``[..., P, K * D]``. Any objective that averages over channels (``LatentGoalObjective``'s latent
term) then averages the members' own costs, each against its own encoding of the goal, and a plan must
fool every member to score well.

Where the members disagree about a predicted frame, the data did not pin the dynamics down: that is where
a search finds the model errors it exploits (PETS, Chua et al. 2018; MOPO, Yu et al. 2020).
:meth:`WorldModelEnsemble.disagreement` measures it in the one space the members share, the low-dim state
their readouts read from a latent (normalised state units): the variance over members, averaged over the
state dims. The objective's ``disagreement_weight`` adds it to the cost (``planning.objectives``).

Shapes: ``K`` members, ``D`` = one member's ``projected_dim``, ``P`` patches.
"""

from __future__ import annotations

import torch

SHARED = ("frameskip", "num_hist", "action_dim", "projected_dim", "alignment_dim")


class WorldModelEnsemble:
    """K world models behind the one-model interface planning uses (``planning.base.WorldModel``).

    Args:
        members: world models with ``encode_obs``, ``rollout_latents`` and the same ``SHARED`` attributes and
            encoder weights; ``read_state`` on all of them for :meth:`disagreement` / :meth:`read_state`.
    Raises:
        ValueError (one line) for fewer than two members or members that do not share a layout or encoder.
    """

    def __init__(self, members: list):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two world models, got {len(members)}")
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            diff = [k for k in SHARED if getattr(m, k, None) != getattr(first, k, None)]
            if diff:
                raise ValueError(f"ensemble member {i} differs from member 0 in {', '.join(diff)}: members must be "
                                 "trained on the same data with the same model settings")
            if not _same_weights(first.encoder, m.encoder):
                raise ValueError(f"ensemble member {i} has another image encoder than member 0: members must share "
                                 "the frozen encoder (the same encoder weights)")
        self.members = list(members)
        self.encoder = first.encoder
        self.frameskip, self.num_hist, self.action_dim = first.frameskip, first.num_hist, first.action_dim
        self.member_dim = int(first.projected_dim)
        self.projected_dim = self.member_dim * len(members)
        self.alignment_dim = first.alignment_dim  # the first member's aligned block (objective.alpha reads it)
        if hasattr(first, "predictor"):  # for memory estimates (planning.memory: one member's activations)
            self.predictor = first.predictor
        self.reads_state = all(getattr(m, "reads_state", False) for m in members)
        self.has_decoder = False

    def eval(self) -> WorldModelEnsemble:
        for m in self.members:
            m.eval()
        return self

    def compile_for_rollouts(self, mode: str = "default", backend: str = "inductor") -> None:
        for m in self.members:
            m.compile_for_rollouts(mode, backend)

    @property
    def rollout_graphs(self) -> bool:
        return any(getattr(m, "rollout_graphs", False) for m in self.members)

    def split(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[..., P, K * D] -> K tensors [..., P, D], one per member."""
        return list(z.split(self.member_dim, dim=-1))

    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """obs {"visual" [B, T, 3, H, W] or "features" [B, T, P, E], "proprio" [B, T, p]} -> [B, T, P, K * D];
        the shared encoder runs once."""
        if "visual" in obs:
            b = obs["visual"].shape[0]
            feats = self.encoder(obs["visual"].flatten(0, 1)).unflatten(0, (b, -1))
            obs = {"features": feats, "proprio": obs["proprio"]}
        return torch.cat([m.encode_obs(obs) for m in self.members], dim=-1)

    def rollout_latents(self, z_obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """z_obs [B, T0, P, K * D], act [B, T0 + H, A] -> [B, T0 + H + 1, P, K * D]: every member's own rollout."""
        return torch.cat([m.rollout_latents(z, act) for m, z in zip(self.members, self.split(z_obs))], dim=-1)

    def rollout(self, obs_0: dict[str, torch.Tensor], act: torch.Tensor) -> torch.Tensor:
        return self.rollout_latents(self.encode_obs(obs_0), act)

    def member_states(self, z: torch.Tensor) -> torch.Tensor:
        """[..., P, K * D] -> [K, ..., S]: the state each member reads from its own latent (normalised units)."""
        return torch.stack([m.read_state(zk) for m, zk in zip(self.members, self.split(z))])

    def read_state(self, z: torch.Tensor) -> torch.Tensor:
        """[..., P, K * D] -> [..., S]: the members' mean reading."""
        return self.member_states(z).mean(0)

    def disagreement(self, z: torch.Tensor) -> torch.Tensor:
        """[..., P, K * D] -> [...]: variance over members of the state they read, averaged over the state dims."""
        return self.member_states(z).var(0, unbiased=False).mean(-1)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules hold the same parameters (names, shapes and values)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)

