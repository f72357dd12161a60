"""Attention transfer's loss (Zagoruyko & Komodakis 2017) on 2x2 and 4x4 maps computed by hand:
the mean over batch and h*w positions of the squared difference of L2-normalized attention maps
(the authors' code), not the norm of the difference, so the same per-sample difference weighs
1/(h*w): four times as much on a map with half the height and width (issue 12, item 3)."""
import pytest
import torch
from torch.nn import functional as F

from introspect.methods import METHODS
from introspect.methods.distill import kl_tau
from introspect.methods.features import at_loss, attention_map
from introspect.models import MODELS

# Student: one channel, a single hot pixel. A^2 = (1, 0, 0, 0), already of norm 1: Q_s = (1, 0, 0, 0).
HOT = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # [1, 1, 2, 2]
# Teacher: two channels of 1 and 3. Mean over channels of A^2 = (1 + 9) / 2 = 5 everywhere;
# norm sqrt(4 * 25) = 10, so Q_t = (1/2, 1/2, 1/2, 1/2).
FLAT = torch.cat([torch.ones(1, 1, 2, 2), 3 * torch.ones(1, 1, 2, 2)], 1)  # [1, 2, 2, 2]


def test_attention_map_2x2_by_hand():
    torch.testing.assert_close(attention_map(HOT), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(attention_map(FLAT), torch.full((1, 4), 0.5))
    torch.testing.assert_close(attention_map(7 * FLAT), attention_map(FLAT))  # scale-free


def test_at_loss_2x2_is_the_mean_squared_difference_by_hand():
    # Q_s - Q_t = (1/2, -1/2, -1/2, -1/2): squares 1/4 each, mean over the 4 positions 1/4.
    # (The norm of the difference would be 1, its square 1: not what the authors' code computes.)
    assert at_loss([HOT], [FLAT]).item() == pytest.approx(0.25)
    # The mean runs over the batch too: a second sample that matches adds 0, halving the mean.
    two_s, two_t = torch.cat([HOT, FLAT[:, :1]]), torch.cat([FLAT, FLAT])
    assert at_loss([two_s], [two_t]).item() == pytest.approx(0.125)


def test_at_loss_weighs_a_map_by_one_over_its_positions():
    # The same images at twice the resolution (nearest upsampling to 4x4): Q_s has four entries
    # 1/2, Q_t sixteen entries 1/4; the difference has four entries 1/4 and twelve -1/4, so its
    # squared norm is 16/16 = 1 as on 2x2, but the mean over 16 positions is 1/16, a quarter of 1/4.
    big_s, big_t = F.interpolate(HOT, scale_factor=2), F.interpolate(FLAT, scale_factor=2)
    diff = attention_map(big_s) - attention_map(big_t)
    assert diff.pow(2).sum().item() == pytest.approx(1.0)
    assert at_loss([big_s], [big_t]).item() == pytest.approx(1 / 16)
    assert at_loss([HOT], [FLAT]).item() == pytest.approx(4 * at_loss([big_s], [big_t]).item())


def test_at_kd_adds_beta_times_the_summed_stage_losses():
    # Two stages: the 2x2 pair (1/4) and its 4x4 upsampling (1/16); beta 1000 -> 1000 * 5/16.
    class Fixed(torch.nn.Module):
        def __init__(self, logits, feats):
            super().__init__()
            self.logits, self.feats, self.stage_channels = logits, feats, [f.shape[1] for f in feats]
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward_features(self, x):
            return self.logits * self.w, [f * self.w for f in self.feats], None

        def forward(self, x):
            return self.forward_features(x)[0]

    s_logits, t_logits = torch.tensor([[0.5, 0.0, -0.5]]), torch.tensor([[2.0, 0.0, -1.0]])
    up = lambda f: F.interpolate(f, scale_factor=2)  # noqa: E731
    student, teacher = Fixed(s_logits, [up(HOT), HOT]), Fixed(t_logits, [up(FLAT), FLAT])
    method = METHODS.build("at_kd", student, 3, teacher="unused")
    method.use_teacher(teacher)
    y = torch.tensor([0])
    loss, _ = method.loss(torch.zeros(1), y, 0)
    kd = 16 * kl_tau(t_logits, s_logits, 4.0) + 0.1 * F.cross_entropy(s_logits, y)
    assert loss.item() == pytest.approx(kd.item() + 1000 * (1 / 16 + 1 / 4), rel=1e-5)


def test_at_kd_default_beta_is_the_authors_1000():
    method = METHODS.build("at_kd", MODELS.build("resnet8", 1, 16, 10), 10, teacher="unused")
    assert method.beta == 1000.0
