"""Generation parameters: the one description of an image cell shared by RPC, store, engine and providers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SEED = 2**32 - 1
RANDOM_SEED = -1


class GenerationParams(BaseModel):
    """Everything that determines one image. Stored as JSON on each job and image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(max_length=4000, description="Positive prompt")
    negative_prompt: str = Field(default="", max_length=4000)
    model: str = Field(default="tiny-sd", min_length=1, max_length=300, description="Model name from models.list")
    sampler: str = Field(default="Euler a", description="A1111 sampler name from samplers.list")
    schedule: str = Field(default="Automatic", description="Schedule type: Automatic, Karras or Exponential")
    steps: int = Field(default=20, ge=1, le=500)
    cfg_scale: float = Field(default=7.0, ge=0.0, le=50.0)
    seed: int = Field(default=RANDOM_SEED, ge=RANDOM_SEED, le=MAX_SEED, description="-1 draws a random seed")
    width: int = Field(default=512, ge=64, le=4096)
    height: int = Field(default=512, ge=64, le=4096)
    clip_skip: int = Field(default=1, ge=1, le=12)
    eta: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_eight(cls, value: int) -> int:
        # The VAE downsamples by 8; other sizes would be silently cropped by diffusers.
        if value % 8:
            raise ValueError(f"must be a multiple of 8, got {value}")
        return value

    def with_seed(self, seed: int) -> GenerationParams:
        return self.model_copy(update={"seed": seed})

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
