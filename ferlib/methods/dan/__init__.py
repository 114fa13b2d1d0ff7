"""DAN, "Distract Your Attention" (Wen et al. 2023), the second classifier of Li et al.'s
Table I (chapter notebooks/04_latent_covariance_augmentation): the model, its affinity and
partition losses, in :mod:`ferlib.methods.dan.model`.
"""
from ferlib.methods.dan.model import (DAN, AffinityLoss, ChannelAttention, CrossAttentionHead,
                                      DANConfig, DANLoss, DANOutput, SpatialAttention,
                                      build_dan, dan_loss_fn, partition_loss)

__all__ = ["DANConfig", "DAN", "DANOutput", "SpatialAttention", "ChannelAttention",
           "CrossAttentionHead", "AffinityLoss", "partition_loss", "build_dan", "dan_loss_fn",
           "DANLoss"]
