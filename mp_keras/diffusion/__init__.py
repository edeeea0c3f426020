"""The diffusion process of chapter 9, apart from any network: schedules, the forward
process q, and the samplers (Algorithm 3 and DDIM).

Models (`mp_keras.models.DDPM` and the ones built on it) pair a noise-prediction network
with these functions; tests pair them with exact oracles.
"""

from mp_keras.diffusion.sampling import (
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    ddpm_sample,
    ddpm_step,
    guided_noise,
)
from mp_keras.diffusion.schedule import SCHEDULES, VARIANCES, NoiseSchedule

__all__ = [
    "SCHEDULES",
    "VARIANCES",
    "NoiseSchedule",
    "ddim_sample",
    "ddim_step",
    "ddim_timesteps",
    "ddpm_sample",
    "ddpm_step",
    "guided_noise",
]
