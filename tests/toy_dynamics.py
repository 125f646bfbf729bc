"""A toy latent world model with a known optimum, for planner tests (same rollout contract as the real one)."""

from __future__ import annotations

import torch
from einops import rearrange

from planning.planners.protocol import PlanContext


class ToyLinearWorldModel:
    """z_{t+1} = z_t + W a_t on latents [P, D]; encode_obs reads the latent straight from ``proprio``.

    ``obs["proprio"]`` is [B, T, P * D]; ``rollout(obs_0, act)`` follows the DINO-WM contract
    (act [B, L, A], L >= T0 -> [B, L + 1, P, D], frame T0 + k after act[:, T0 - 1 + k]).
    """

    def __init__(self, action_dim: int = 4, patches: int = 2, dim: int = 4, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.patches, self.dim, self.action_dim = patches, dim, action_dim
        self.weight = torch.randn(action_dim, patches * dim, generator=g) / action_dim ** 0.5
        self.calls = 0

    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return rearrange(obs["proprio"], "b t (p d) -> b t p d", p=self.patches)

    def rollout(self, obs_0: dict[str, torch.Tensor], act: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        z0 = self.encode_obs(obs_0)
        t0 = z0.shape[1]
        frames, z = list(z0.unbind(1)), z0[:, -1]
        for k in range(t0 - 1, act.shape[1]):
            z = z + rearrange(act[:, k] @ self.weight, "b (p d) -> b p d", p=self.patches)
            frames.append(z)
        return torch.stack(frames, dim=1)


def toy_context(model: ToyLinearWorldModel, optimum: torch.Tensor, seed: int = 0, t0: int = 1) -> PlanContext:
    """A context whose goal is reached exactly by the action sequences ``optimum`` [B, h, A]."""
    b, h, a = optimum.shape
    g = torch.Generator().manual_seed(1000 + seed)
    z_now = torch.randn(b, t0, model.patches * model.dim, generator=g)
    obs = {"proprio": z_now, "visual": torch.zeros(b, t0, 3, 2, 2)}
    past = torch.zeros(b, t0 - 1, a)
    z_goal = model.rollout(obs, torch.cat([past, optimum], 1))[:, -1:]
    return PlanContext(obs_0=obs, past_actions=past, z_goal=z_goal, horizon=h,
                       generators=[torch.Generator().manual_seed(seed * 100 + i) for i in range(b)],
                       action_low=-torch.ones(a), action_high=torch.ones(a))


class LatentToyModel(ToyLinearWorldModel):
    """The toy linear model with the latent-rollout API the prior needs."""

    def rollout_latents(self, z_obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        frames, z = list(z_obs.unbind(1)), z_obs[:, -1]
        for k in range(z_obs.shape[1] - 1, act.shape[1]):
            z = z + (act[:, k] @ self.weight).unflatten(-1, (self.patches, self.dim))
            frames.append(z)
        return torch.stack(frames, dim=1)


class OraclePrior:
    """The least-squares action that covers 1/steps_left of the way to the goal (exact for the toy)."""

    def __init__(self, model: LatentToyModel):
        self.pinv, self.seen = torch.linalg.pinv(model.weight), []

    def __call__(self, z, z_goal, steps_left):
        self.seen.append(steps_left.tolist())
        return ((z_goal - z).flatten(1) / steps_left[:, None]) @ self.pinv


class GraspToyModel:
    """A toy pick-and-place with a grasp that only a precise gripper schedule achieves (latent rollout API).

    Latent [B, T, 1, 6] = (arm x, arm y, object x, object y, holding, gripper closed). Actions [A = 3] =
    (dx, dy, gripper): the arm moves by 0.3 x (dx, dy); the gripper is closed where its command is > 0. The object
    is grasped only when the gripper *closes* (open at the previous step, closed now) with the arm within 0.15 of
    it; while held and closed it moves with the arm; opening drops it. Closing early, late or beside the object
    holds nothing, as with a real gripper.
    """

    frameskip, num_hist, action_dim = 1, 1, 3

    def __init__(self):
        self.calls = 0

    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return obs["proprio"].unsqueeze(2)  # [B, T, 1, 6]

    def rollout(self, obs_0, act):
        return self.rollout_latents(self.encode_obs(obs_0), act)

    def rollout_latents(self, z_obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        frames, z = list(z_obs.unbind(1)), z_obs[:, -1, 0]
        for k in range(z_obs.shape[1] - 1, act.shape[1]):
            arm = z[:, :2] + 0.3 * act[:, k, :2].clamp(-1, 1)
            closed = (act[:, k, 2] > 0).float()
            near = ((arm - z[:, 2:4]).norm(dim=-1) < 0.15).float()
            grasp = closed * (1 - z[:, 5]) * near
            hold = torch.maximum(grasp, z[:, 4] * closed)
            obj = torch.where(hold[:, None] > 0, arm, z[:, 2:4])
            z = torch.cat([arm, obj, hold[:, None], closed[:, None]], dim=-1)
            frames.append(z[:, None])
        return torch.stack(frames, dim=1)


def grasp_context(batch: int = 2, horizon: int = 6, seed: int = 0) -> PlanContext:
    """Arm at the origin with the gripper open, the object at (0.6, 0); the goal: the object held at (0.6, 0.6)."""
    from planning.planners.protocol import GripperLevels

    start = torch.tensor([0.0, 0.0, 0.6, 0.0, 0.0, 0.0]).expand(batch, 1, 6).clone()
    goal = torch.tensor([0.6, 0.6, 0.6, 0.6, 1.0, 1.0]).expand(batch, 1, 1, 6).clone()
    dims = torch.tensor([False, False, True])
    return PlanContext(obs_0={"proprio": start}, past_actions=torch.zeros(batch, 0, 3), z_goal=goal, horizon=horizon,
                       generators=[torch.Generator().manual_seed(seed * 100 + i) for i in range(batch)],
                       action_low=-torch.ones(3), action_high=torch.ones(3),
                       hold_actions=torch.tensor([0.0, 0.0, -1.0]).expand(batch, 3).clone(),
                       gripper=GripperLevels(dims=dims, open=-torch.ones(3), close=torch.ones(3)))


class ArmHeavyGraspModel(GraspToyModel):
    """The toy grasp seen the way a camera sees it: ``arm_patches`` more patches show only the arm, so the mean
    latent cost is mostly the arm's and a plan that parks the arm at the goal without the object costs little.

    Latent [B, T, 1 + arm_patches, 6]: patch 0 is :class:`GraspToyModel`'s (arm, object, holding, closed), the
    others (arm x, arm y, 0, 0, 0, 0). ``read_state`` -> [..., 3] the object's position (x, y, 0), std 1.
    """

    def __init__(self, arm_patches: int = 7):
        super().__init__()
        self.arm_patches = arm_patches
        self.reads_state = True

    def _with_arm_patches(self, z: torch.Tensor) -> torch.Tensor:
        arm = torch.zeros_like(z[:, :, :1]).expand(-1, -1, self.arm_patches, -1).clone()
        arm[..., :2] = z[:, :, :1, :2]
        return torch.cat([z[:, :, :1], arm], dim=2)

    def encode_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._with_arm_patches(super().encode_obs(obs))

    def rollout_latents(self, z_obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self._with_arm_patches(super().rollout_latents(z_obs[:, :, :1], act))

    @staticmethod
    def read_state(z: torch.Tensor) -> torch.Tensor:
        obj = z[..., 0, 2:4]
        return torch.cat([obj, torch.zeros_like(obj[..., :1])], dim=-1)

    def goal(self, ctx: PlanContext) -> PlanContext:
        """``ctx`` (a :func:`grasp_context`) with its goal seen through the arm patches."""
        import dataclasses

        return dataclasses.replace(ctx, z_goal=self._with_arm_patches(ctx.z_goal))
