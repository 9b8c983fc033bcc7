"""Stage-1 losses against the reference implementations (sentence-transformers / setfit, torch)."""

import numpy as np
import pytest
import setfit.losses as setfit_losses
import sentence_transformers.sentence_transformer.losses as st_losses
import torch

from setfit_jax import losses

TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 8)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 3, 3, 0])
    return emb, labels


def test_cosine_similarity_loss(batch):
    emb, _ = batch
    u, v = emb[:6], emb[6:]
    target = np.array([1, 0, 1, 0, 0, 1], np.float32)
    ref = st_losses.CosineSimilarityLoss(model=None).compute_loss_from_embeddings(
        [torch.tensor(u), torch.tensor(v)], torch.tensor(target))
    np.testing.assert_allclose(losses.cosine_similarity_loss(u, v, target), ref.item(), **TOL)
    # Padded rows (weight 0) do not change the loss.
    padded = losses.cosine_similarity_loss(np.concatenate([u, v[:2]]), np.concatenate([v, u[:2]]),
                                           np.concatenate([target, [1, 1]]), np.array([1] * 6 + [0, 0]))
    np.testing.assert_allclose(padded, ref.item(), **TOL)


def test_supcon(batch):
    emb, labels = batch
    keep = labels != 3  # the reference gives NaN for an anchor without positives; check on the rest
    ref = setfit_losses.SupConLoss(model=lambda f: {"sentence_embedding": f})(
        [torch.tensor(emb[keep])], torch.tensor(labels[keep]))
    np.testing.assert_allclose(losses.supcon_loss(emb[keep], labels[keep]), ref.item(), rtol=1e-5)


@pytest.mark.parametrize("name,cls", [("batch_hard_triplet", "BatchHardTripletLoss"),
                                      ("batch_all_triplet", "BatchAllTripletLoss")])
def test_triplets(batch, name, cls):
    emb, labels = batch
    distance = st_losses.BatchHardTripletLossDistanceFunction.cosine_distance
    ref = getattr(st_losses, cls)(model=None, distance_metric=distance, margin=0.25)
    ref = ref.compute_loss_from_embeddings([torch.tensor(emb)], torch.tensor(labels))
    np.testing.assert_allclose(losses.IN_BATCH_LOSSES[name](emb, labels, margin=0.25), ref.item(), **TOL)


def test_invalid_rows_are_ignored(batch):
    emb, labels = batch
    valid = np.arange(12) < 9
    fn = losses.batch_hard_triplet_loss
    full = fn(emb[:9], labels[:9])
    masked = fn(np.concatenate([emb[:9], 100 * emb[9:]]), labels, valid)
    np.testing.assert_allclose(masked, full, rtol=1e-5)
