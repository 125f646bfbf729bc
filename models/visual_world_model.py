"""VWorldModel: frozen image-encoder features (DINOv2 by default) + proprio -> 64-D projected latent; ViT
predictor with actions.

Latent layout per patch token: ``[projected (projected_dim) | action embedding (action_emb_dim)]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import reduce, repeat
from torch import Tensor, nn

from models.alignment import StateAlignment, StateReadout
from models.decoder import PatchDecoder
from models.encoders import ActionEncoder, ProprioEncoder
from models.image_encoder import ImageEncoder
from models.projection import Projection
from models.vit import ViTPredictor


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast computes in on ``device``'s type when it is on there, else None."""
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None


class VWorldModel(nn.Module):
    """DINO world model with an 80-D token (64 projected + 16 action).

    Shapes: B batch, T frames, P patches, E = encoder width (``encoder.emb_dim``), A = action_dim * frameskip.
    """

    def __init__(self, encoder: ImageEncoder, proprio_encoder: ProprioEncoder, action_encoder: ActionEncoder,
                 projection: Projection, predictor: ViTPredictor, alignment: StateAlignment,
                 num_hist: int, num_pred: int, frameskip: int, action_dim: int, alignment_dim: int,
                 state_readout: StateReadout | None = None, decoder: PatchDecoder | None = None,
                 align_weight: float = 1.0, dyn_weight: float = 0.0, decoder_weight: float = 1.0,
                 target_stop_grad: bool = True, residual: bool = True):
        super().__init__()
        self.encoder, self.proprio_encoder, self.action_encoder = encoder, proprio_encoder, action_encoder
        self.projection, self.predictor, self.alignment = projection, predictor, alignment
        self.state_readout, self.decoder = state_readout, decoder
        self.num_hist, self.num_pred, self.frameskip = num_hist, num_pred, frameskip
        self.action_dim, self.alignment_dim = action_dim, alignment_dim
        self.projected_dim = projection.out_dim
        self.proprio_dim = proprio_encoder.in_dim
        self.img_size = encoder.img_size
        self.align_weight, self.dyn_weight, self.decoder_weight = align_weight, dyn_weight, decoder_weight
        self.target_stop_grad, self.residual = target_stop_grad, residual
        self.rollout_compiled = False  # set by compile_for_rollouts
        self.rollout_graphs = False    # the compiled predictor replays its own CUDA graphs (reduce-overhead)

    def compile_for_rollouts(self, mode: str = "default", backend: str = "inductor") -> None:
        """Compile the predictor for planning rollouts (``torch.compile``, in place: parameters and
        ``state_dict`` keys unchanged). Fuses the predictor's small ops into a few kernels. With mode
        ``default`` a planner may record whole iterations as CUDA graphs (CEM does, see
        :mod:`planning.planners.cuda_graph`); ``reduce-overhead`` replays the predictor's own CUDA graphs instead
        (``rollout_graphs``: then a planner must not record its own). The first call of each input shape
        compiles (tens of seconds on a GPU). Compiled rollouts feed the whole window at every step instead of
        reusing a key/value cache (the cache's Python state does not trace, and a reduce-overhead graph's
        outputs may be overwritten by its next replay); the window is at most ``num_hist`` frames. Results are
        the same up to floating-point rounding."""
        from utils.torch_compile import CUDA_GRAPH_MODES

        self.predictor.compile(mode=mode, backend=backend)
        self.rollout_compiled, self.rollout_graphs = True, mode in CUDA_GRAPH_MODES

    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """Every learned tensor (the frozen encoder excluded: it is rebuilt and its hash verified)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    # --- encoding ---------------------------------------------------------------------------
    def encode_obs(self, obs: dict[str, Tensor]) -> Tensor:
        """obs {"visual" [B,T,3,H,W] in [0,1] | "features" [B,T,P,E], "proprio" [B,T,proprio_dim]} -> [B,T,P,64]."""
        if "features" in obs:
            feats = obs["features"].float()
        else:
            feats = self._encode_frames(obs["visual"])
        prop = self.proprio_encoder(obs["proprio"].float())
        prop = repeat(prop, "b t d -> b t p d", p=feats.shape[2])
        return self.projection(torch.cat([feats, prop], dim=-1))

    @torch.compiler.disable
    def _encode_frames(self, visual: Tensor) -> Tensor:
        """visual [B, T, 3, H, W] -> frozen encoder features [B, T, P, E]. Always eager, also when the
        training step is compiled (``training.compile``): the frozen encoder is a few large kernels that
        compiling would not speed up, only delay."""
        return self.encoder(visual.flatten(0, 1)).unflatten(0, visual.shape[:2])

    def encode_act(self, act: Tensor) -> Tensor:
        """act [B, T, A] normalised -> [B, T, action_emb_dim]."""
        return self.action_encoder(act.float())

    def replace_actions_from_z(self, z: Tensor, act: Tensor) -> Tensor:
        """z [B,T,P,80], act [B,T,A] -> z whose action slice is the embedding of ``act`` on every patch."""
        emb = repeat(self.encode_act(act), "b t d -> b t p d", p=z.shape[2])
        return torch.cat([z[..., : self.projected_dim], emb], dim=-1)

    def encode(self, obs: dict[str, Tensor], act: Tensor) -> Tensor:
        """obs (see encode_obs), act [B,T,A] -> z [B,T,P,80]."""
        return self.replace_actions_from_z(self.encode_obs(obs), act)

    def predict(self, z: Tensor) -> Tensor:
        """z [B,T,P,80] (T <= num_hist) -> next latents [B,T,P,64] (position t predicts frame t+1).

        With ``residual`` the predictor outputs the change of each frame's projected latent.
        """
        out = self.predictor(z)
        return out + z[..., : self.projected_dim] if self.residual else out

    @property
    def reads_state(self) -> bool:
        return self.state_readout is not None

    def read_state(self, z: Tensor) -> Tensor:
        """z [..., P, >= alignment_dim] -> the normalised low-dim state [..., state_dim] the model reads from the
        aligned dims of a latent (its state readout, trained on predicted latents: ``model.dyn_weight``)."""
        if self.state_readout is None:
            raise RuntimeError("this world model has no state readout (train with model.dyn_weight > 0)")
        return self.state_readout(z[..., : self.alignment_dim].float())

    def decode(self, z_obs: Tensor) -> Tensor:
        """z_obs [B,T,P,64] -> images [B,T,3,S,S] in [0,1]; only when the run trained the decoder."""
        if self.decoder is None:
            raise RuntimeError("this world model has no decoder (train with model.decoder=true)")
        return self.decoder(z_obs.flatten(0, 1)).unflatten(0, z_obs.shape[:2])

    # --- rollout ----------------------------------------------------------------------------
    def rollout(self, obs_0: dict[str, Tensor], act: Tensor) -> Tensor:
        """obs_0 with T0 frames, act [B, T0+H, A] -> z_obs_pred [B, T0+H+1, P, 64].

        Frames 0..T0-1 are the encoded observations; frame T0+k is the prediction after act[:, T0-1+k]
        (each step feeds the last ``num_hist`` frames, their action slices set from ``act``).
        """
        return self.rollout_latents(self.encode_obs(obs_0), act)

    def rollout_latents(self, z_obs: Tensor, act: Tensor) -> Tensor:
        """``rollout`` from already encoded observations: z_obs [B, T0, P, 64], act [B, T0+H, A]
        -> [B, T0+H+1, P, 64] (planners encode an observation once and roll out many action sequences).

        Equal to feeding the window of the last ``num_hist`` frames to :meth:`predict` at every step, but
        cheaper: while the window still grows (t <= num_hist) the frames already fed keep their slot,
        content and action, so their keys / values are reused (``KVCache``) and only the new frame runs
        through the predictor (only with ``num_hist`` > 1 and not compiled, see
        :meth:`compile_for_rollouts`); once the window slides every frame moves to another position slot
        (the learned position embedding differs) and sees another first frame, so nothing can be reused
        exactly and the whole window is recomputed, its last layer for the last frame only.

        Under autocast (planning on a GPU: bf16) the predictor's residual stream is kept in the autocast
        dtype too, which halves its memory traffic; the latents in ``out`` stay fp32 (the residual update
        of each step is added in fp32), so rounding does not build up over the horizon.
        """
        t0, total = z_obs.shape[1], act.shape[1]
        if total < t0:
            raise ValueError(f"act has {total} steps, fewer than the {t0} observed frames")
        d, stream = self.projected_dim, autocast_dtype(z_obs.device)
        out = z_obs.new_empty(z_obs.shape[0], total + 1, *z_obs.shape[2:])  # [B, T0+H+1, P, 64]
        out[:, :t0] = z_obs
        # a cache pays only when the window holds several frames; compiled rollouts never keep one
        use_cache = self.num_hist > 1 and t0 <= self.num_hist and not self.rollout_compiled
        cache = self.predictor.new_cache() if use_cache else None
        for t in range(t0, total + 1):
            lo = max(0, t - self.num_hist)
            if cache is not None and lo == 0:  # growing window: feed the frames not yet in the cache
                z = self.replace_actions_from_z(out[:, cache.frames : t], act[:, cache.frames : t])
                pred = self.predictor(z, cache=cache, last_frame_only=True, stream_dtype=stream)[:, -1]
            else:
                z = self.replace_actions_from_z(out[:, lo:t], act[:, lo:t])
                pred = self.predictor(z, last_frame_only=True, stream_dtype=stream)[:, -1]
            out[:, t] = pred + z[:, -1, :, :d] if self.residual else pred
        return out

    # --- training ---------------------------------------------------------------------------
    def _readout_loss(self, z_obs: Tensor, pred: Tensor, open_loop: list[Tensor], state: Tensor) -> Tensor:
        """MSE of the state read from latents. Patch readout: on every encoded frame z_obs [B, T, P, 64], every
        one-step prediction pred [B, h, P, 64] (frames 1..h) and every open-loop one (frames h+1.., [B, P, 64]
        each): the planner reads predicted latents. Mean readout (older runs): the one-step predictions only."""
        a, h = self.alignment_dim, self.num_hist
        if not self.state_readout.n_patches:
            return F.mse_loss(self.read_state(pred), state[:, 1 : h + 1])
        z = torch.cat([z_obs, pred, *(f[:, None] for f in open_loop)], dim=1)[..., :a]  # [B, T + h + k, P, a]
        target = torch.cat([state, state[:, 1 : h + 1], state[:, h + 1 : h + 1 + len(open_loop)]], dim=1)
        return F.mse_loss(self.state_readout(z), target)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Training / validation losses for a batch of windows of T = num_hist + num_pred frames.

        batch: "visual" [B,T,3,H,W] or "features" [B,T,P,E], "proprio" [B,T,Dp], "action" [B,T,A],
        "state" [B,T,Ds] (all normalised). Returns scalar tensors: ``loss`` (total), ``pred_loss``
        (MSE of the 64-D next latents), ``copy_loss`` (copy-last-frame baseline, no grad),
        ``align_loss``, and ``dyn_loss`` / ``decoder_loss`` when enabled.
        """
        h = self.num_hist
        z_obs = self.encode_obs(batch)
        target_all = z_obs.detach() if self.target_stop_grad else z_obs
        z = self.replace_actions_from_z(z_obs[:, :h], batch["action"][:, :h])
        pred = self.predict(z)  # [B, h, P, 64]: predictions of frames 1..h
        pred_loss = F.mse_loss(pred, target_all[:, 1 : h + 1])
        frames = [*z_obs[:, :h].unbind(1), pred[:, -1]]
        for k in range(1, self.num_pred):  # open-loop steps beyond the first, on predicted frames
            z = self.replace_actions_from_z(torch.stack(frames[k : k + h], dim=1), batch["action"][:, k : k + h])
            frames.append(self.predict(z)[:, -1])
            pred_loss = pred_loss + F.mse_loss(frames[-1], target_all[:, h + k])
        n_pred = self.num_pred
        pred_loss = pred_loss / n_pred
        with torch.no_grad():
            copy_loss = F.mse_loss(z_obs[:, :h], z_obs[:, 1 : h + 1])
        z_align = reduce(z_obs[..., : self.alignment_dim], "b t p d -> (b t) d", "mean")
        align_loss = self.alignment(z_align, batch["state"].flatten(0, 1))
        out = {"pred_loss": pred_loss, "copy_loss": copy_loss, "align_loss": align_loss}
        loss = pred_loss + self.align_weight * align_loss
        if self.state_readout is not None:
            out["dyn_loss"] = self._readout_loss(z_obs, pred, frames[h + 1:], batch["state"].float())
            loss = loss + self.dyn_weight * out["dyn_loss"]
        if self.decoder is not None and "visual" in batch:
            imgs = self.decode(z_obs.detach())
            tgt = F.interpolate(batch["visual"].flatten(0, 1).float(), size=imgs.shape[-2:], mode="bilinear",
                                align_corners=False, antialias=True).unflatten(0, imgs.shape[:2])
            out["decoder_loss"] = F.mse_loss(imgs, tgt)
            loss = loss + self.decoder_weight * out["decoder_loss"]
        out["loss"] = loss
        return out
